"""Safe decoding: sniff by magic bytes, refuse bombs from the header, downscale while decoding."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from likeness.errors import CorruptMedia, EmptyFile, TooLarge, TooManyFrames, UnsupportedFormat
from likeness.media.frames import Frame, Sampled, sample_animation, sample_video
from likeness.settings import MediaLimits

_IMAGE_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
    (b"WEBP", 8, "webp"),
    (b"BM", 0, "bmp"),
    (b"II*\x00", 0, "tiff"),
    (b"MM\x00*", 0, "tiff"),
)
_VIDEO_MAGIC: tuple[tuple[bytes, int, str], ...] = ((b"ftyp", 4, "mp4"), (b"\x1a\x45\xdf\xa3", 0, "webm"))
VIDEO_FORMATS = frozenset(name for _, _, name in _VIDEO_MAGIC)
_EXIF_ORIENTATION = 0x0112
_EXIF_SOFTWARE = 0x0131


@dataclass(frozen=True)
class Media:
    """Pixels ready for analysis (RGB, at most ``analysis_max_side``) and what the container told us."""

    pixels: np.ndarray
    width: int
    height: int
    format: str
    frame_count: int
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    frames: tuple[Frame, ...] = ()  # videos and animations: every sampled frame, the first one being ``pixels``
    duration_s: float | None = None

    def each_frame(self) -> tuple[Frame, ...]:
        return self.frames or (Frame(0, 0.0, self.pixels),)

    @property
    def scale(self) -> float:
        """Analysis pixels per original pixel, to map boxes back to the original image."""
        return self.pixels.shape[1] / self.width


def sniff(data: bytes) -> str:
    if not data:
        raise EmptyFile("the file is empty (0 bytes)")
    for magic, offset, name in _IMAGE_MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if name == "webp" and not data.startswith(b"RIFF"):
                continue
            return name
    for magic, offset, name in _VIDEO_MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return name
    head = data[:16].hex(" ")
    raise UnsupportedFormat(f"not a supported image (first bytes: {head})")


def decode(data: bytes, limits: MediaLimits) -> Media:
    if len(data) > limits.max_bytes:
        raise TooLarge(f"{len(data)} bytes is over the {limits.max_bytes}-byte limit")
    fmt = sniff(data)
    if fmt in VIDEO_FORMATS:
        return _video(data, fmt, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, fmt, limits)
    except (TooLarge, TooManyFrames):
        raise
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"decompression bomb refused: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptMedia(f"cannot decode {fmt}: {exc}") from exc


def _decode(data: bytes, fmt: str, limits: MediaLimits) -> Media:
    img: Image.Image = Image.open(io.BytesIO(data))
    width, height = img.size
    if width * height > limits.max_pixels:
        raise TooLarge(f"{width}x{height} = {width * height} pixels is over the {limits.max_pixels} limit")
    frames = _count_frames(img, limits.max_frames)
    if frames > 1:
        return _animation(img, fmt, frames, limits)
    notes: list[str] = []
    exif = _exif(img, notes)
    metadata = _metadata(img, exif)
    target = limits.analysis_max_side
    if fmt == "jpeg":
        img.draft("RGB", (target, target))  # the JPEG decoder scales by 1/2..1/8 while decoding
    img.load()
    img, transposed = _orient(img, exif.get(_EXIF_ORIENTATION), notes)
    if transposed:
        width, height = height, width
    img = img.convert("RGB")
    img.thumbnail((target, target), Image.Resampling.LANCZOS)
    pixels = np.asarray(img)
    return Media(pixels, width, height, fmt, frames, metadata, tuple(notes))


def _video(data: bytes, fmt: str, limits: MediaLimits) -> Media:
    return _from_sampled(sample_video(data, limits), fmt)


def _animation(img: Image.Image, fmt: str, frames: int, limits: MediaLimits) -> Media:
    return replace(_from_sampled(sample_animation(img, limits), fmt), frame_count=frames)


def _from_sampled(sampled: Sampled, fmt: str) -> Media:
    return Media(
        sampled.frames[0].pixels,
        sampled.width,
        sampled.height,
        fmt,
        sampled.decoded,
        {},
        tuple(sampled.warnings),
        tuple(sampled.frames),
        sampled.duration_s,
    )


def _count_frames(img: Image.Image, max_frames: int) -> int:
    """Count frames without decoding more than ``max_frames + 1`` of them."""
    if not getattr(img, "is_animated", False):
        return 1
    count = 1
    try:
        while True:
            img.seek(count)
            count += 1
            if count > max_frames:
                raise TooManyFrames(f"more than {max_frames} frames; the limit is {max_frames}")
    except EOFError:
        pass
    finally:
        img.seek(0)
    return count


def _exif(img: Image.Image, notes: list[str]) -> dict[int, object]:
    try:
        return dict(img.getexif())
    except Exception as exc:  # a mangled EXIF block must not lose the picture
        notes.append(f"EXIF block unreadable ({exc}); orientation ignored")
        return {}


def _orient(img: Image.Image, orientation: object, notes: list[str]) -> tuple[Image.Image, bool]:
    """The picture turned upright, and whether that swapped width and height (orientations 5-8)."""
    if orientation is None or orientation == 1:
        return img, False
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        notes.append(f"EXIF orientation {orientation!r} is not a valid value (1-8); analysed as stored")
        return img, False
    return ImageOps.exif_transpose(img), orientation >= 5


def _metadata(img: Image.Image, exif: dict[int, object]) -> dict[str, str]:
    """Text metadata that provenance analysis reads: PNG text chunks, EXIF Software, XMP."""
    meta: dict[str, str] = {}
    for key, value in img.info.items():
        if key in ("xmp", "XML:com.adobe.xmp") and isinstance(value, bytes | str):
            raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            meta["xmp"] = raw[:20_000]
        elif isinstance(value, str):
            meta[str(key)] = value[:20_000]
    if exif.get(_EXIF_SOFTWARE):
        meta["exif_software"] = str(exif[_EXIF_SOFTWARE])
    return meta
