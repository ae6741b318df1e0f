"""A llama.cpp server (``python -m llama_cpp.server``, or llama.cpp's own ``llama-server``)
or any OpenAI-compatible chat server as the story model.

It speaks the same chat-completions stream as Azure OpenAI, so it goes through the same
``AzureStoryLLM`` (streaming, retries with backoff, circuit breaker, timeouts), with the
official ``openai`` client pointed at the server instead of Azure.
"""

from __future__ import annotations

from pydantic import SecretStr

from appliance.azure_openai.settings import AzureSettings
from appliance.story.azure_backend import AzureStoryLLM

NO_KEY = "no-key"
"""llama.cpp's server wants no key unless started with --api-key; the client needs one."""


def server_story_llm(
    url: str, model: str = "story", *, api_key: str | None = None, timeout_s: float = 60.0
) -> AzureStoryLLM:
    """The story model at ``url`` (e.g. http://10.0.0.5:8000), asking for ``model``."""
    from openai import OpenAI

    base = url.rstrip("/")
    settings = AzureSettings(
        endpoint=base,
        deployment=model,
        api_key=SecretStr(api_key or NO_KEY),
        timeout_s=timeout_s,
    )
    client = OpenAI(
        base_url=f"{base}/v1", api_key=api_key or NO_KEY, max_retries=0, timeout=timeout_s
    )
    llm = AzureStoryLLM(settings, client=client)
    llm.name = f"server {base} {model}"
    return llm
