"""PDQ robustness: does a transformed copy still match the original at distance <= 31, and do unrelated
pictures stay apart?

    python bench/robustness.py

Each source picture is hashed as a victim would protect it; each transformed copy is hashed as a scan does
(the nearest of its 8 orientations counts). A copy "matches" when that distance is <= 31 and both hashes have
quality >= 50. False matches: every pair of copies of *different* sources (all transformations), same rule.
Sources: package-shipped pictures (scikit-image, matplotlib), and eval-data photos when present.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from itertools import combinations

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from bench.common import EVAL, table, write_section
from likeness.analyze.hashing import pdq, scan_hashes
from likeness.analyze.pdq_index import as_words, hamming

MAX_DISTANCE, MIN_QUALITY = 31, 50
Transform = Callable[[Image.Image], Image.Image]


def _jpeg(quality: int) -> Transform:
    def run(img: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    return run


def _resize(f: float) -> Transform:
    return lambda img: img.resize(
        (max(8, round(img.width * f)), max(8, round(img.height * f))), Image.Resampling.LANCZOS
    )


def _crop(f: float) -> Transform:
    """Cut ``f`` of the width and of the height in all, half from each side (a centred crop)."""

    def run(img: Image.Image) -> Image.Image:
        dx, dy = round(img.width * f / 2), round(img.height * f / 2)
        return img.crop((dx, dy, img.width - dx, img.height - dy))

    return run


def _overlay(img: Image.Image) -> Image.Image:
    out = img.copy()
    draw = ImageDraw.Draw(out)
    size = max(12, img.height // 12)
    draw.text(
        (img.width // 20, img.height - 2 * size),
        "reposted by @someone",
        fill=(255, 255, 255),
        font_size=size,
        stroke_width=2,
        stroke_fill=(0, 0, 0),
    )
    return out


TRANSFORMS: dict[str, Transform] = {
    "resize 50%": _resize(0.5),
    "resize 25%": _resize(0.25),
    **{f"JPEG q{q}": _jpeg(q) for q in (30, 50, 70, 90)},
    "crop 5%": _crop(0.05),
    "crop 10%": _crop(0.10),
    "rotate 90": lambda img: img.transpose(Image.Transpose.ROTATE_90),
    "rotate 180": lambda img: img.transpose(Image.Transpose.ROTATE_180),
    "rotate 270": lambda img: img.transpose(Image.Transpose.ROTATE_270),
    "mirror": ImageOps.mirror,
    "brightness +20%": lambda img: ImageEnhance.Brightness(img).enhance(1.2),
    "brightness -20%": lambda img: ImageEnhance.Brightness(img).enhance(0.8),
    "text overlay": _overlay,
    "border 10%": lambda img: ImageOps.expand(img, border=max(img.size) // 10, fill=(255, 255, 255)),
}


def package_sources() -> dict[str, Image.Image]:
    from skimage import data

    from likeness.services.corpus import GRACE_HOPPER

    found = {"grace_hopper": Image.open(GRACE_HOPPER).convert("RGB")}
    for name in (
        "astronaut",
        "camera",
        "coffee",
        "chelsea",
        "rocket",
        "brick",
        "grass",
        "gravel",
        "hubble_deep_field",
        "horse",
        "moon",
        "page",
        "text",
        "coins",
        "clock",
        "logo",
        "immunohistochemistry",
        "retina",
    ):
        try:
            pixels = getattr(data, name)()
        except Exception:  # some scikit-image samples are downloaded on demand: without a network, skip them
            continue
        found[name] = Image.fromarray(np.asarray(pixels)).convert("RGB")
    return found


def eval_sources(limit: int = 120) -> dict[str, Image.Image]:
    paths = sorted((EVAL / "faces").glob("*/*.jpg"))[::4][:limit] + sorted((EVAL / "noface").glob("*.jpg"))
    return {f"{p.parent.name}/{p.name}": Image.open(p).convert("RGB") for p in paths} if paths else {}


def origin(name: str) -> str:
    """What makes two sources unrelated: eval-data photos of one identity can be near-identical shots."""
    return name.split("/")[0]


def evaluate(sources: dict[str, Image.Image]) -> tuple[dict[str, tuple[int, int]], int, int, int]:
    """Per transformation (matched, usable); then false matches, unrelated pairs, sources usable."""
    originals = {name: pdq(np.asarray(img)) for name, img in sources.items()}
    usable = {name for name, (_, q) in originals.items() if q >= MIN_QUALITY}
    rates: dict[str, tuple[int, int]] = {}
    copies: list[tuple[str, list[bytes]]] = []
    for label, transform in TRANSFORMS.items():
        hit = total = 0
        for name in sorted(usable):
            variants, quality = scan_hashes(np.asarray(transform(sources[name])))
            if quality < MIN_QUALITY:
                continue
            total += 1
            distance = int(hamming(as_words(variants), as_words([originals[name][0]])[0]).min())
            hit += distance <= MAX_DISTANCE
            copies.append((name, variants))
        rates[label] = (hit, total)
    false = pairs = 0
    for (a, va), (b, vb) in combinations(copies, 2):
        if origin(a) == origin(b):
            continue
        pairs += 1
        false += int(hamming(as_words(va), as_words([vb[0]])[0]).min()) <= MAX_DISTANCE
    return rates, false, pairs, len(usable)


def main() -> None:
    sections = []
    for label, sources in (("package-shipped pictures", package_sources()), ("eval-data photos", eval_sources())):
        if not sources:
            continue
        rates, false, pairs, usable = evaluate(sources)
        rows = [[t, f"{h}/{n}", f"{h / n:.2f}" if n else "n/a"] for t, (h, n) in rates.items()]
        print(label, rows, false, pairs, flush=True)
        sections.append(f"""**{label}** ({usable} sources with PDQ quality >= {MIN_QUALITY}):

{table(["transformation", "matched", "rate"], rows)}

False matches: {false} of {pairs:,} pairs of copies of different sources.
""")
    write_section(
        "robustness",
        "PDQ robustness per transformation",
        f"""
Distance <= {MAX_DISTANCE}, quality >= {MIN_QUALITY} on both sides; a copy is hashed as a scan hashes it
(`likeness.analyze.hashing.scan_hashes`: its 8 orientations, and the same without a uniform border if it has one)
and the nearest hash counts. "Crop x%" cuts x% of width and height in all, centred. False matches count pairs
of copies of unrelated sources (for eval-data: different identities). Test floors in `tests/test_robustness.py`
come from the package-shipped table.

{chr(10).join(sections)}""",
    )


if __name__ == "__main__":
    main()
