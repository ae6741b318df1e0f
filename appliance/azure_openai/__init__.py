"""Azure OpenAI: the fallback for the story and, when the user allows it, for expressions."""
