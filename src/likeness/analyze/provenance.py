"""Signs that a picture came out of an AI generator, from the metadata the generator leaves behind.

What this reports is stored and shown, so every value is cleaned and bounded here (``likeness.text``), whatever
metadata it is handed: a NUL or a lone surrogate in a prompt once stopped every scan that met the picture.
"""

from __future__ import annotations

import re

from likeness.analyze.plugins import register
from likeness.analyze.types import Analysis
from likeness.media import Media
from likeness.settings import Settings
from likeness.text import clean

# PNG text chunks written by common front-ends: AUTOMATIC1111/Forge ("parameters"), ComfyUI
# ("prompt", "workflow"), NovelAI ("Software": "NovelAI", "Comment" JSON), InvokeAI ("invokeai_metadata").
_GENERATOR_CHUNKS = {
    "parameters": "stable-diffusion-webui",
    "prompt": "comfyui",
    "workflow": "comfyui",
    "invokeai_metadata": "invokeai",
    "sd-metadata": "invokeai",
    "dream": "invokeai",
}
_GENERATOR_WORDS = re.compile(
    r"stable.?diffusion|midjourney|dall.?e|novelai|comfyui|invokeai|firefly|flux|automatic1111|"
    r"leonardo|imagen|sdxl|civitai",
    re.IGNORECASE,
)
# AUTOMATIC1111 writes the same parameters text into EXIF UserComment when it saves a JPEG or WebP.
_WEBUI_PARAMETERS = re.compile(r"Steps: \d+, Sampler: ")
_XMP_TOOL = re.compile(r"CreatorTool(?:>|=\")([^<\"]+)")
_VALUE_LIMIT, _NAME_LIMIT = 2000, 200


def detect(metadata: dict[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk, generator in _GENERATOR_CHUNKS.items():
        if chunk in metadata:
            _found(found, generator, f"png:{chunk}", metadata[chunk])
    comment = metadata.get("exif_user_comment", "")
    if _WEBUI_PARAMETERS.search(comment):
        _found(found, "stable-diffusion-webui", "exif:UserComment", comment)
    for key in ("Software", "exif_software"):
        value = metadata.get(key, "").strip()
        if _GENERATOR_WORDS.search(value):
            _found(found, value, "software", value)
    tool = _XMP_TOOL.search(metadata.get("xmp", ""))
    if tool and _GENERATOR_WORDS.search(tool.group(1)):
        _found(found, tool.group(1).strip(), "xmp:CreatorTool", tool.group(1).strip())
    return found


def _found(found: dict[str, str], generator: str, key: str, value: str) -> None:
    """The first generator seen names the picture's; each piece of evidence is kept beside it."""
    found.setdefault("generator", clean(generator, _NAME_LIMIT))
    found[key] = clean(value, _VALUE_LIMIT)


class ProvenanceAnalyzer:
    name = "provenance"

    def __call__(self, media: Media, result: Analysis) -> None:
        result.provenance = detect(media.metadata)


@register("provenance")
def _provenance(settings: Settings) -> ProvenanceAnalyzer:
    return ProvenanceAnalyzer()
