"""Safe decoding: sniff by magic bytes, refuse from what the file declares, downscale while decoding.

Only the sniffed format's decoder ever reads the bytes (Pillow's ``formats=``; PyAV's demuxer, see frames.py):
Pillow would otherwise offer a file to each of its ~40 plugins in turn, Ghostscript's EPS reader among them.
Before any pixel is decoded, what the file declares is held against the limits: pixel count, frames and the
pixels of all frames together, progressive JPEG scans (containers.py says why each costs). Text taken from the
file (PNG text chunks, comments, XMP, EXIF fields) is cleaned and bounded (``likeness.text``): PostgreSQL refuses
NUL and invalid code points, and one such picture used to stop every scan that met it.
"""

from __future__ import annotations

import contextlib
import io
import re
import struct
import warnings
from dataclasses import dataclass, field, replace
from functools import cache
from itertools import islice

import numpy as np
from PIL import Image

from likeness.errors import CorruptMedia, EmptyFile, MediaError, TooLarge, TooManyFrames, UnsupportedFormat
from likeness.media.containers import EBML_MAGIC, gif_layout, iso_brands, jpeg_scans, webp_canvas
from likeness.media.frames import Frame, Sampled, sample_animation, sample_video
from likeness.settings import MediaLimits
from likeness.text import clean

SNIFF_BYTES = 64  # ``sniff`` needs no more of a file than this
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
_PILLOW_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "gif": "GIF",
    "webp": "WEBP",
    "bmp": "BMP",
    "tiff": "TIFF",
    "avif": "AVIF",
    "heif": "HEIF",
}
IMAGE_FORMATS = frozenset(_PILLOW_FORMATS)
VIDEO_FORMATS = frozenset({"mp4", "mov", "webm", "mkv"})
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})  # the info headers Pillow's BMP reader knows
# ISO base media brands (ftyp). HEIF: ISO/IEC 23008-12 image and sequence brands; mif1/msf1 are structural, the
# codec brand (avif or heic...) says which decoder. Apple: iPhone pictures "heic" (compatible mif1, MiHE, miaf),
# iPhone videos "qt  ", exports "mp42"/"isom".
_AVIF_BRANDS = frozenset({"avif", "avis"})
_HEIF_BRANDS = frozenset({"heic", "heix", "hevc", "heim", "heis", "hevm", "hevs"})
_HEIF_STRUCTURAL = frozenset({"mif1", "msf1"})
_VIDEO_BRANDS = frozenset(
    {"isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9", "mp41", "mp42", "mp71", "avc1", "qt  "}
    | {"M4V ", "M4VH", "M4VP", "3gp4", "3gp5", "3gp6", "3gp7", "3gp8", "3gp9", "3g2a", "3g2b", "3g2c", "3ge6"}
    | {"3ge7", "3gg6", "dash", "mmp4", "MSNV", "NDAS", "NDSC", "XAVC", "f4v ", "kddi", "caqv", "mqt "}
)
_NOT_ANALYSED_BRANDS = {"M4A ": "audio", "M4B ": "audio", "M4P ": "audio", "F4A ": "audio", "crx ": "a raw photo"}
_EXIF_IFD = 0x8769
_EXIF_ORIENTATION = 0x0112
_EXIF_TEXT = {0x0131: "exif_software", 0x010E: "exif_description", 0x9286: "exif_user_comment"}
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_TEXT_LIMIT = 20_000  # characters of one text field
_TEXT_FIELDS = 64  # text fields kept from one file (a PNG may hold thousands of chunks)
# What Pillow raises on bytes it cannot make sense of (its parsers index, unpack and divide what the file says).
_DECODER_ERRORS: tuple[type[Exception], ...] = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)
_DECODER_ERRORS += (KeyError, TypeError, ZeroDivisionError, RuntimeError)
_BUFFER_NAME = re.compile(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>")  # Pillow names the file it could not read


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
    """The format, from the first ``SNIFF_BYTES`` bytes (never from a name): one of ``IMAGE_FORMATS`` or
    ``VIDEO_FORMATS``; EmptyFile or UnsupportedFormat otherwise."""
    if not data:
        raise EmptyFile("the file is empty (0 bytes)")
    for magic, offset, name in _IMAGE_MAGIC:
        if data[offset : offset + len(magic)] == magic and _confirmed(name, data):
            return name
    if data[4:8] == b"ftyp":
        return _iso_format(data)
    if data.startswith(EBML_MAGIC):
        return "webm" if b"webm" in data[:SNIFF_BYTES] else "mkv"
    head = data[:16].hex(" ")
    raise UnsupportedFormat(f"not a supported image (first bytes: {head})")


def _confirmed(name: str, data: bytes) -> bool:
    """A two- or four-byte magic alone also starts text files ("BMW ...") and other RIFF files (WAV, AVI)."""
    if name == "webp":
        return data.startswith(b"RIFF")
    if name == "bmp":
        return int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES
    return True


def _iso_format(data: bytes) -> str:
    """HEIF and AVIF pictures and MP4/QuickTime videos share one container; the ftyp brands tell them apart."""
    major, *compatible = iso_brands(data) or [""]
    if major in _AVIF_BRANDS:
        return "avif"
    if major in _HEIF_BRANDS:
        return "heif"
    if major in _NOT_ANALYSED_BRANDS:
        raise UnsupportedFormat(f"ISO media of brand {major!r} is {_NOT_ANALYSED_BRANDS[major]}, not analysed")
    if major not in _VIDEO_BRANDS:
        if _AVIF_BRANDS.intersection(compatible):
            return "avif"
        if major in _HEIF_STRUCTURAL or (_HEIF_BRANDS | _HEIF_STRUCTURAL).intersection(compatible):
            return "heif"
    return "mov" if major == "qt  " else "mp4"


def decode(data: bytes, limits: MediaLimits) -> Media:
    if len(data) > limits.max_bytes:
        raise TooLarge(f"{len(data)} bytes is over the {limits.max_bytes}-byte limit")
    fmt = sniff(data)
    if fmt in VIDEO_FORMATS:
        return _from_sampled(sample_video(data, limits), fmt)
    _refuse_declared(data, fmt, limits)
    try:
        with warnings.catch_warnings(record=True) as said:  # what Pillow warns about the file goes with the file
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            media = _decode(data, fmt, limits)
        return _with_warnings(media, [str(w.message) for w in said])
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(f"decompression bomb refused: {exc}") from exc
    except _DECODER_ERRORS as exc:
        raise _decoder_error(fmt, exc) from exc


def _with_warnings(media: Media, said: list[str]) -> Media:
    notes = [clean(text, 500) for text in dict.fromkeys(said)][:10]
    return replace(media, warnings=media.warnings + tuple(notes)) if notes else media


def _decoder_error(fmt: str, exc: Exception) -> MediaError:
    message = _BUFFER_NAME.sub("", clean(str(exc), 500))
    if isinstance(exc, ValueError) and "MAX_TEXT" in message:  # Pillow's limits on PNG text (1 MB a chunk)
        return TooLarge(f"PNG text over Pillow's limits refused: {message}")
    return CorruptMedia(f"cannot decode {fmt}: {message}")


def _refuse_declared(data: bytes, fmt: str, limits: MediaLimits) -> None:
    """Limits checked on the raw bytes, before a decoder is even opened (libwebp allocates its canvases then)."""
    if fmt == "jpeg" and (scans := jpeg_scans(data)) > limits.max_jpeg_scans:
        raise TooLarge(f"{scans} JPEG scans; the limit is {limits.max_jpeg_scans} (a progressive JPEG has about 10)")
    if fmt == "webp" and (canvas := webp_canvas(data)):
        _check_pixels(canvas, limits)


def _check_pixels(size: tuple[int, int], limits: MediaLimits) -> None:
    width, height = size
    if width * height > limits.max_pixels:
        raise TooLarge(f"{width}x{height} = {width * height} pixels is over the {limits.max_pixels} limit")


def _decode(data: bytes, fmt: str, limits: MediaLimits) -> Media:
    img = _open(data, fmt)
    width, height = img.size
    _check_pixels(img.size, limits)
    notes: list[str] = []
    frames = _frame_count(img, data, fmt, limits, notes)
    if frames > 1:
        return _animation(img, fmt, frames, limits)
    exif = _exif(img, notes)
    metadata = _metadata(img, exif)
    target = limits.analysis_max_side
    if fmt == "jpeg":
        img.draft("RGB", (target, target))  # the JPEG decoder scales by 1/2..1/8 while decoding
    rgb = img.convert("RGB")
    rgb.thumbnail((target, target), Image.Resampling.LANCZOS)
    rgb, transposed = _orient(rgb, exif.get(_EXIF_ORIENTATION), notes)  # turned after scaling: cheaper
    if transposed:
        width, height = height, width
    return Media(np.asarray(rgb), width, height, fmt, frames, metadata, tuple(clean(n, 500) for n in notes))


def _open(data: bytes, fmt: str) -> Image.Image:
    if fmt == "heif":
        _register_heif()
    return Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[fmt]])


@cache
def _register_heif() -> None:
    """HEIF decodes through libheif (pillow-heif), registered with Pillow on first use: importing it costs ~50 ms.
    Depth and auxiliary images are never analysed, so libheif need not read them."""
    from pillow_heif import register_heif_opener

    register_heif_opener(depth_images=False, aux_images=False)


def _frame_count(img: Image.Image, data: bytes, fmt: str, limits: MediaLimits, notes: list[str]) -> int:
    """The frames the file declares, refused over the frame limit or when decoding them all would produce more
    than ``max_animation_pixels`` (Pillow decodes each frame onto the whole canvas)."""
    if fmt == "heif":
        if (pictures := getattr(img, "n_frames", 1)) > 1:
            notes.append(f"HEIF file of {pictures} pictures: the primary one is analysed")
        return 1
    if fmt == "gif":  # counting with Pillow would decode every frame
        frames, canvas = gif_layout(data, limits.max_frames + 1)
        _check_pixels(canvas, limits)
        area = frames * canvas[0] * canvas[1]
    elif fmt == "tiff":  # pages differ in size; reading a page's tags decodes nothing
        frames, area = _tiff_pages(img, limits.max_frames + 1)
    else:  # PNG (acTL), WebP and AVIF say how many frames; an MPO lists its pictures
        frames = int(getattr(img, "n_frames", 1))
        area = frames * img.width * img.height
    if frames > limits.max_frames:
        raise TooManyFrames(f"more than {limits.max_frames} frames; the limit is {limits.max_frames}")
    if frames > 1 and area > limits.max_animation_pixels:
        raise TooLarge(f"{frames} frames, {area} pixels to decode in all; the limit is {limits.max_animation_pixels}")
    return max(frames, 1)


def _tiff_pages(img: Image.Image, most: int) -> tuple[int, int]:
    """(pages, pixels of them all), counting at most ``most`` pages."""
    pages, area = 0, 0
    try:
        while pages < most:
            img.seek(pages)
            pages, area = pages + 1, area + img.width * img.height
    except EOFError:
        pass
    finally:
        img.seek(0)
    return pages, area


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
        tuple(clean(w, 500) for w in sampled.warnings),
        tuple(sampled.frames),
        sampled.duration_s,
    )


def _exif(img: Image.Image, notes: list[str]) -> dict[int, object]:
    """The main and Exif IFDs' tags in one dict (their tag numbers do not overlap)."""
    try:
        exif = img.getexif()
        tags: dict[int, object] = dict(exif)
        tags.update(exif.get_ifd(_EXIF_IFD))
        return tags
    except Exception as exc:  # a mangled EXIF block must not lose the picture
        notes.append(f"metadata unreadable ({exc}); EXIF orientation ignored")
        return {}


def _orient(img: Image.Image, orientation: object, notes: list[str]) -> tuple[Image.Image, bool]:
    """The picture turned upright, and whether that swapped width and height (orientations 5-8)."""
    if orientation is None or orientation == 1:
        return img, False
    if not isinstance(orientation, int) or orientation not in _TRANSPOSE:
        notes.append(f"EXIF orientation {orientation!r} is not a valid value (1-8); analysed as stored")
        return img, False
    return img.transpose(_TRANSPOSE[orientation]), orientation >= 5


def _metadata(img: Image.Image, exif: dict[int, object]) -> dict[str, str]:
    """Text that provenance analysis reads: EXIF Software, ImageDescription and UserComment (AUTOMATIC1111 writes
    its parameters there in JPEG and WebP), PNG text chunks, comments and XMP; each cleaned and bounded, and at
    most ``_TEXT_FIELDS`` of them."""
    meta = {name: _exif_text(exif[tag]) for tag, name in _EXIF_TEXT.items() if exif.get(tag)}
    for key, value in islice(img.info.items(), 4 * _TEXT_FIELDS):
        name = "xmp" if key in ("xmp", "XML:com.adobe.xmp") else clean(str(key), 200)
        if isinstance(value, str) or (isinstance(value, bytes) and name in ("xmp", "comment")):
            meta.setdefault(name, _text(value))
    return dict(islice(meta.items(), _TEXT_FIELDS))


def _text(value: str | bytes) -> str:
    raw = value[: 2 * _TEXT_LIMIT]
    return clean(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw, _TEXT_LIMIT)


def _exif_text(value: object) -> str:
    """An EXIF text field: ASCII fields as Pillow gives them (read as Latin-1: UTF-8 is restored when they are),
    UserComment by its 8-byte character code."""
    if isinstance(value, bytes):
        return clean(_user_comment(value[: 4 * _TEXT_LIMIT]), _TEXT_LIMIT)
    text = str(value)[: 2 * _TEXT_LIMIT]
    with contextlib.suppress(UnicodeError):
        text = text.encode("latin-1").decode("utf-8")
    return clean(text, _TEXT_LIMIT)


def _user_comment(value: bytes) -> str:
    code, body = value[:8], value[8:]
    if code == b"UNICODE\x00":  # UCS-2 in either byte order (writers disagree): ASCII text has its zeros first in BE
        big = body[0::2].count(0) >= body[1::2].count(0)
        return body.decode("utf-16-be" if big else "utf-16-le", "replace")
    if code == b"JIS\x00\x00\x00\x00\x00":
        return body.decode("shift_jis", "replace")
    if code in (b"ASCII\x00\x00\x00", b"\x00" * 8):
        return body.decode("utf-8", "replace")
    return value.decode("utf-8", "replace")
