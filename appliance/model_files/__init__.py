"""The model files Moodtale uses: what they are, where they come from, whether they are intact."""

from appliance.model_files.manifest import (
    MANIFEST_PATH,
    Manifest,
    ModelEntry,
    ModelFileError,
    ModelState,
    load_manifest,
)

__all__ = [
    "MANIFEST_PATH",
    "Manifest",
    "ModelEntry",
    "ModelFileError",
    "ModelState",
    "load_manifest",
]
