"""A small labelled corpus made from pictures that ship inside installed packages (scikit-image's astronaut,
Eileen Collins; matplotlib's Grace Hopper) so the demo and the tests run on any fresh machine."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageOps
from skimage import data

GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@dataclass
class Corpus:
    root: Path
    reference: Path  # the subject's enrollment photo (outside the scanned folder)
    protected: Path  # the image protected by hash (outside the scanned folder; never scanned itself)
    subject: list[Path] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)
    no_face: list[Path] = field(default_factory=list)
    reposts: list[Path] = field(default_factory=list)
    hostile: list[Path] = field(default_factory=list)

    @property
    def scan_dir(self) -> Path:
        return self.root / "scan"


def _save(path: Path, pixels: np.ndarray, fmt: str = "JPEG", **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, fmt, **kw)
    return path


def resize(pixels: np.ndarray, factor: float) -> np.ndarray:
    img = Image.fromarray(pixels)
    return np.asarray(img.resize((round(img.width * factor), round(img.height * factor)), Image.Resampling.LANCZOS))


def _collage(*parts: np.ndarray, height: int = 400) -> np.ndarray:
    tiles = [resize(p, height / p.shape[0]) for p in parts]
    return np.concatenate(tiles, axis=1)


def _rotated_with_exif(pixels: np.ndarray) -> bytes:
    """Stored turned on its side with EXIF orientation 6, as phone cameras do."""
    img = Image.fromarray(pixels).transpose(Image.Transpose.ROTATE_90)
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88, exif=exif.tobytes())
    return buf.getvalue()


def build(root: Path) -> Corpus:
    astronaut, hopper = data.astronaut(), np.asarray(Image.open(GRACE_HOPPER).convert("RGB"))
    portrait = astronaut[20:280, 110:340]
    scan = root / "scan"
    corpus = Corpus(
        root,
        _save(root / "reference" / "eileen_collins.jpg", portrait, quality=95),
        _save(root / "protected" / "private_original.png", data.chelsea(), "PNG"),
    )
    corpus.subject = [
        _save(scan / "subject" / "full_photo.jpg", astronaut, quality=90),
        _save(scan / "subject" / "half_size.jpg", resize(astronaut, 0.5), quality=85),
        _save(scan / "subject" / "double_size.png", resize(portrait, 2.0), "PNG"),
        _save(scan / "subject" / "low_quality.jpg", astronaut, quality=30),
        _save(scan / "subject" / "mirrored.webp", np.ascontiguousarray(astronaut[:, ::-1]), "WEBP", quality=80),
        _save(scan / "subject" / "greyscale.jpg", np.asarray(ImageOps.grayscale(Image.fromarray(astronaut)))),
        _save(scan / "subject" / "collage_with_cat.jpg", _collage(data.coffee(), portrait, data.chelsea())),
    ]
    rotated = scan / "subject" / "rotated_exif.jpg"
    rotated.write_bytes(_rotated_with_exif(astronaut))
    corpus.subject.append(rotated)
    corpus.others = [
        _save(scan / "others" / "grace_hopper.jpg", hopper, quality=90),
        _save(scan / "others" / "grace_hopper_small.png", resize(hopper, 0.6), "PNG"),
    ]
    corpus.no_face = [
        _save(scan / "noface" / f"{name}.jpg", getattr(data, name)())
        for name in ("coffee", "rocket", "brick", "hubble_deep_field", "coins")
    ]
    corpus.no_face.append(_save(scan / "noface" / "blank.png", np.full((400, 400, 3), 200, np.uint8), "PNG"))
    corpus.no_face.append(_save(scan / "noface" / "tiny.png", astronaut[:16, :16], "PNG"))
    corpus.reposts = [_save(scan / "reposts" / "cat_repost.jpg", resize(data.chelsea(), 0.7), quality=60)]
    corpus.hostile = _hostile(scan / "hostile")
    return corpus


def _hostile(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, "JPEG")
    files = {"empty.jpg": b"", "notes.jpg": b"not a picture, just text\n", "truncated.jpg": buf.getvalue()[:20_000]}
    for name, body in files.items():
        (folder / name).write_bytes(body)
    return [folder / name for name in files]
