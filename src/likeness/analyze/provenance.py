"""Signs that a picture came out of an AI generator, from the metadata the generator leaves behind."""

from __future__ import annotations

import re

from likeness.analyze.plugins import register
from likeness.analyze.types import Analysis
from likeness.media import Media
from likeness.settings import Settings

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
_XMP_TOOL = re.compile(r"CreatorTool(?:>|=\")([^<\"]+)")


def detect(metadata: dict[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk, generator in _GENERATOR_CHUNKS.items():
        if chunk in metadata:
            found.setdefault("generator", generator)
            found[f"png:{chunk}"] = metadata[chunk][:2000]
    for key in ("Software", "exif_software"):
        value = metadata.get(key, "")
        if _GENERATOR_WORDS.search(value):
            found.setdefault("generator", value.strip())
            found["software"] = value.strip()
    tool = _XMP_TOOL.search(metadata.get("xmp", ""))
    if tool and _GENERATOR_WORDS.search(tool.group(1)):
        found.setdefault("generator", tool.group(1).strip())
        found["xmp:CreatorTool"] = tool.group(1).strip()
    return found


class ProvenanceAnalyzer:
    name = "provenance"

    def __call__(self, media: Media, result: Analysis) -> None:
        result.provenance = detect(media.metadata)


@register("provenance")
def _provenance(settings: Settings) -> ProvenanceAnalyzer:
    return ProvenanceAnalyzer()
