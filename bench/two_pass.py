"""Two-pass thumbnails: bytes fetched and face recall, against fetching every original, in the same run.

    python bench/two_pass.py [--items 240]

A simulated CivitAI corpus (tests/simulator.py): originals at the sizes Stable Diffusion users post
(512x768 to 1024x1536), as JPEG q92 and as PNG (what SD front ends write), and the 450 px rendition the CDN
serves for ``width=450`` or ``width=320`` (JPEG q85). Pictures with people are
../shared/eval-data face photos, the others its no-face set, each placed on the original's canvas. Both paths
run the whole analysis (faces, NSFW, hashes); a face item is found when its catalogued media has a face.
The seed claim to beat: -93% bytes.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from sqlalchemy import func, select
from tests.simulator import Platform, serve

from bench.common import distractors, identities, noface, table, write_section
from likeness.services import crawl
from likeness.services.app import open_app
from likeness.settings import CrawlSettings, FetchSettings, Settings
from likeness.store.models import CrawlItem, Face

SIZES = [(512, 768), (768, 1152), (832, 1216), (1024, 1536), (768, 1344), (1024, 1024)]
ORIGINALS = "JPEG"  # set per run by ``main``: the originals' format


@lru_cache(maxsize=1)
def _photos() -> tuple[list[Path], list[Path]]:
    faces = [p for paths in identities().values() for p in paths] + distractors()
    return faces, noface()


@lru_cache(maxsize=64)
def _open(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def render(item: int, width: int, height: int, face: bool) -> bytes:
    faces, scenes = _photos()
    source = faces[item % len(faces)] if face else scenes[item % len(scenes)]
    img = ImageOps.pad(_open(source), (width, height), color=(int(item * 37 % 255), 40, 60))
    if not face and item // len(scenes) % 2:
        img = ImageOps.mirror(img)
    pixels = np.array(img)
    pixels[:2, : min(width, 64)] = item % 251  # unique bytes per item
    buf = io.BytesIO()
    if width <= 450:  # the CDN's rendition
        Image.fromarray(pixels).save(buf, "JPEG", quality=85)
    elif ORIGINALS == "PNG":  # what Stable Diffusion front ends write, and most uploads are
        Image.fromarray(pixels).save(buf, "PNG", compress_level=6)
    else:
        Image.fromarray(pixels).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def run(items: int, face_every: int, two_pass: bool, thumb_width: int = 450) -> tuple[int, int, int]:
    """(bytes fetched, face items found, face items)."""
    platform = Platform(items=items, per_page=50, face_every=face_every, render=render,
                        size_of=lambda i: SIZES[i % len(SIZES)])  # fmt: skip
    fetch = FetchSettings(allow_private_networks=True, rate_per_host=1000, burst_per_host=20)
    with serve(platform) as base, tempfile.TemporaryDirectory() as tmp:
        crawling = CrawlSettings(civitai_url=base, two_pass=two_pass, thumb_width=thumb_width)
        settings = Settings(home=Path(tmp), fetch=fetch, crawl=crawling)
        with open_app(settings) as app:
            summary = crawl.crawl(app, crawl.civitai(app), actor="bench")
            assert summary.error is None and summary.scan.errors == [], summary
            with app.store.transaction() as session:
                with_faces = set(
                    session.scalars(
                        select(CrawlItem.key).join(Face, Face.media_id == CrawlItem.media_id).group_by(CrawlItem.key)
                    )
                )
                assert session.scalar(select(func.count()).select_from(CrawlItem)) == items
    face_keys = {str(i) for i in range(1, items + 1) if i % face_every == 0}
    return summary.bytes, len(face_keys & with_faces), len(face_keys)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=160)
    args = parser.parse_args()
    global ORIGINALS
    rows = []
    for ORIGINALS, width in (("JPEG", 450), ("PNG", 450), ("PNG", 320)):
        for face_every, share in ((10, "10%"), (4, "25%"), (2, "50%")):
            originals, found_o, faces = run(args.items, face_every, two_pass=False)
            two, found_t, _ = run(args.items, face_every, two_pass=True, thumb_width=width)
            saving = f"{100 * (two - originals) / originals:+.0f}%"
            sizes = f"{originals / 2**20:.1f} MiB", f"{two / 2**20:.1f} MiB"
            found = f"{found_o}/{faces}", f"{found_t}/{faces}"
            rows.append([ORIGINALS, f"{width} px", share, args.items, *sizes, saving, *found])
    body = table(
        ["originals", "first pass", "pictures with a face", "items", "originals only", "two-pass", "bytes",
         "face items found (originals)", "face items found (two-pass)"],
        rows,
    )  # fmt: skip
    body += (
        "\n\nTwo-pass fetches every 450 px rendition and, for the pictures where it finds a face, the original as "
        "well. Its saving shrinks as the share of pictures with faces grows, and grows with the weight of the "
        "originals. Face recall is measured on both paths against the same ground truth (the eval-data photo "
        "placed in the item)."
    )
    write_section("two_pass", "Two-pass thumbnails: bandwidth and face recall", body)


if __name__ == "__main__":
    main()
