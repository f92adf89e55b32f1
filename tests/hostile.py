"""A hostile corpus, generated: one generator per class of file that has cost a scan dearly or stopped it.

Each file is small (the whole corpus is ~2 MB, built in about a second) but asks a decoder for far more than it
holds (a bomb, an animation on a huge canvas, thousands of JPEG scans, a video longer than it says) or carries what
storage refuses (NUL and invalid code points in text), or is simply broken (truncated, empty, one format's magic on
another's body). Used by tests/test_hostile_media.py, by the end-to-end scan test and by bench/hostile.py::

    from tests.hostile import corpus
    for item in corpus(tmp_path):  # each written to tmp_path / item.filename
        item.group, item.name, item.data, item.expected, item.path

``expected`` is the outcome under the default ``MediaLimits``: an error kind (``TooLarge.kind``, ...) or
``ANALYZED`` (decoded; the pipeline may still skip the file as too small or blank, which is not an error).
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from likeness.errors import CorruptMedia, EmptyFile, TooLarge, TooManyFrames, UnsupportedFormat

ANALYZED = "analyzed"
BOMB_SIDE = 9000  # 81 M pixels: over the 60 M pixel limit, under Pillow's own bomb check (89 M), so ours decides
TOO_LARGE, TOO_MANY, CORRUPT = TooLarge.kind, TooManyFrames.kind, CorruptMedia.kind
UNSUPPORTED, EMPTY = UnsupportedFormat.kind, EmptyFile.kind
_EXIF_IFD = 0x8769


@dataclass(frozen=True)
class HostileFile:
    group: str  # the class ("png-text", "bomb", ...): bench/hostile.py reports per group
    name: str  # unique in the corpus
    data: bytes
    expected: str  # an error kind or ANALYZED, under the default MediaLimits
    suffix: str  # what such a file is usually called; content decides, never the suffix
    path: Path | None = None  # set by ``corpus(folder)``

    @property
    def filename(self) -> str:
        return self.name + self.suffix


def corpus(folder: Path | None = None) -> list[HostileFile]:
    """Every hostile file, written to ``folder`` when one is given."""
    files = [item for generate in GENERATORS for item in generate()]
    assert len({f.name for f in files}) == len(files), "names must be unique"
    if folder is None:
        return files
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for item in files:
        (folder / item.filename).write_bytes(item.data)
        written.append(replace(item, path=folder / item.filename))
    return written


# -- small honest pictures to carry the hostile parts ---------------------------------------------------------


def picture(width: int = 96, height: int = 64) -> np.ndarray:
    """A colour gradient with a bright block (not blank, no face), ``height`` x ``width`` RGB."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=-1)
    rgb[height // 4 : height // 2, width // 4 : width // 2] = 250
    return rgb.astype(np.uint8)


def encode(pixels: np.ndarray, fmt: str, **options: object) -> bytes:
    if fmt == "HEIF":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **options)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_with(chunks: list[bytes]) -> bytes:
    """A small PNG with extra chunks inserted before IEND."""
    png = encode(picture(), "PNG")
    return png[:-12] + b"".join(chunks) + png[-12:]


def deflated_zeros(size: int, chunk: int = 1 << 20) -> bytes:
    """zlib data inflating to ``size`` zero bytes, made in milliseconds: after a full flush the compressor's output
    for the same input repeats, so one chunk's output is copied and the checksum set by hand."""
    comp, zeros = zlib.compressobj(9), bytes(chunk)
    head = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(size, chunk)
    tail = comp.compress(bytes(rest)) + comp.flush()
    adler = 1
    for _ in range(whole):
        adler = zlib.adler32(zeros, adler)
    adler = zlib.adler32(bytes(rest), adler)
    body = head + again * (whole - 1) if whole else b"\x78\xda"
    return body + tail[:-4] + struct.pack(">I", adler)


# -- PNG text chunks -----------------------------------------------------------------------------------------

_PARAMETERS = "a portrait photo\nSteps: 20, Sampler: Euler a, CFG scale: 7, Model: sdxl"


def png_text() -> Iterator[HostileFile]:
    """NUL, control characters and a megabyte of text in the chunks AI front-ends write (``parameters``)."""
    nul = (_PARAMETERS + "\x00\x01 after a NUL\x7f").encode("latin-1")
    yield HostileFile(
        "png-text", "png-tEXt-nul", _png_with([_chunk(b"tEXt", b"parameters\x00" + nul)]), ANALYZED, ".png"
    )
    ztxt = b"parameters\x00\x00" + zlib.compress(nul)
    yield HostileFile("png-text", "png-zTXt-nul", _png_with([_chunk(b"zTXt", ztxt)]), ANALYZED, ".png")
    itxt = b"parameters\x00\x00\x00\x00\x00" + (_PARAMETERS + "\x00\u00e9 \ufffe").encode("utf-8")
    yield HostileFile("png-text", "png-iTXt-nul", _png_with([_chunk(b"iTXt", itxt)]), ANALYZED, ".png")
    megabyte = b"parameters\x00" + nul + b"x" * 1_000_000
    yield HostileFile("png-text", "png-parameters-1mb", _png_with([_chunk(b"tEXt", megabyte)]), ANALYZED, ".png")
    # 4 MB of NUL from 4 KB, over Pillow's 1 MB a chunk: before the image Pillow will not open the file; after it,
    # the picture is analysed without its text
    bomb = _chunk(b"zTXt", b"prompt\x00\x00" + deflated_zeros(4 << 20))
    yield HostileFile("png-text", "png-zTXt-bomb-after-image", _png_with([bomb]), ANALYZED, ".png")
    png = encode(picture(), "PNG")
    yield HostileFile("png-text", "png-zTXt-bomb-before-image", png[:33] + bomb + png[33:], TOO_LARGE, ".png")
    many = [_chunk(b"tEXt", f"key{i}\x00value \x00{i}".encode()) for i in range(5000)]
    yield HostileFile("png-text", "png-5000-text-chunks", _png_with(many), ANALYZED, ".png")


# -- EXIF ------------------------------------------------------------------------------------------------------


def exif_block(
    ifd0: dict[int, object], exif_ifd: dict[int, object] | None = None, orientation: object | None = None
) -> bytes:
    exif = Image.Exif()
    for tag, value in ifd0.items():
        exif[tag] = value
    if orientation is not None:
        exif[0x0112] = orientation
    for tag, value in (exif_ifd or {}).items():
        exif.get_ifd(_EXIF_IFD)[tag] = value
    return exif.tobytes()


def raw_exif(entries: list[tuple[int, int, int, bytes]], next_ifd: int = 0) -> bytes:
    """A big-endian EXIF block of one IFD written by hand: (tag, type, count, 4-byte value or offset) entries."""
    ifd = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHI", *e[:3]) + e[3] for e in entries)
    return b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + ifd + struct.pack(">I", next_ifd)


def exif_text() -> Iterator[HostileFile]:
    """Software, ImageDescription and UserComment with NUL, control bytes, invalid UTF-8 and a lone surrogate."""
    bad = b"Stable Diffusion\x00\x01\xff\xfe\xc3("
    comment = b"UNICODE\x00" + "Steps: 20, Sampler: Euler\x00".encode("utf-16-be") + b"\xd8\x00" + b"\x00A"
    block = exif_block({0x0131: bad, 0x010E: b"desc\x00\x80" * 1000}, {0x9286: comment})
    for fmt, suffix in (("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")):
        data = encode(picture(), fmt, exif=block)
        yield HostileFile("exif-text", f"exif-text-{fmt.lower()}", data, ANALYZED, suffix)
    ascii_comment = exif_block({}, {0x9286: b"ASCII\x00\x00\x00" + b"x" * 60_000})  # APP1 holds 64 KB
    yield HostileFile(
        "exif-text", "exif-usercomment-60kb", encode(picture(), "JPEG", exif=ascii_comment), ANALYZED, ".jpg"
    )


def exif_orientation() -> Iterator[HostileFile]:
    """Orientation values outside 1-8 and of the wrong type, and an EXIF block whose offsets point nowhere."""
    for value in (0, 9, 65535):
        data = encode(picture(), "JPEG", exif=exif_block({}, orientation=value))
        yield HostileFile("exif-orientation", f"exif-orientation-{value}", data, ANALYZED, ".jpg")
    text = encode(picture(), "JPEG", exif=raw_exif([(0x0112, 2, 2, b"6\x00\x00\x00")]))  # ASCII "6"
    yield HostileFile("exif-orientation", "exif-orientation-text", text, ANALYZED, ".jpg")
    # Orientation, then Software: a 2 GB string at offset 4096; the next IFD far past the end.
    broken = raw_exif([(0x0112, 3, 1, b"\x00\x06\x00\x00"), (0x0131, 2, 0x7FFFFFFF, b"\x00\x00\x10\x00")], 0xFFFFFFF0)
    data = encode(picture(), "JPEG", exif=broken)
    yield HostileFile("exif-orientation", "exif-offsets-nowhere", data, ANALYZED, ".jpg")


# -- animations: a huge canvas, many small frames --------------------------------------------------------------


def gif_canvas(width: int, height: int, frames: int, at: tuple[int, int] = (0, 0)) -> bytes:
    """A GIF of ``frames`` one-pixel frames on a ``width`` x ``height`` canvas (Pillow decodes each onto the whole
    canvas); the last frame sits at ``at``."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    control = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 100 ms a frame

    def frame(x: int, y: int) -> bytes:
        return b"\x2c" + struct.pack("<HHHHB", x, y, 1, 1, 0x80) + b"\x00\x00\x00\xff\xff\xff\x02\x02\x44\x01\x00"

    return head + (control + frame(0, 0)) * (frames - 1) + control + frame(*at) + b"\x3b"


def apng_canvas(side: int, frames: int, declared: int | None = None) -> bytes:
    """An APNG: a blank ``side`` x ``side`` first frame, then one-pixel frames; ``declared`` in acTL."""
    sequence = iter(range(2 * frames))

    def control(w: int, h: int, x: int) -> bytes:
        return _chunk(b"fcTL", struct.pack(">IIIIIHHBB", next(sequence), w, h, x, 0, 1, 10, 0, 0))

    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))]
    chunks += [_chunk(b"acTL", struct.pack(">II", declared or frames, 0)), control(side, side, 0)]
    chunks.append(_chunk(b"IDAT", deflated_zeros(side * (side + 1))))
    pixel = zlib.compress(b"\x00\xff")
    for i in range(1, frames):
        chunks += [control(1, 1, i % side), _chunk(b"fdAT", struct.pack(">I", next(sequence)) + pixel)]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + _chunk(b"IEND", b"")


def _riff(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")


def webp_canvas(side: int, frames: int) -> bytes:
    """An animated WebP of ``frames`` one-pixel lossless frames on a ``side`` x ``side`` canvas."""
    one = encode(np.zeros((1, 1, 3), np.uint8), "WEBP", lossless=True)[12:]  # its VP8L chunk

    def u24(value: int) -> bytes:
        return struct.pack("<I", value)[:3]

    header = _riff(b"VP8X", b"\x02\x00\x00\x00" + u24(side - 1) + u24(side - 1))
    frame = _riff(b"ANMF", u24(0) * 4 + u24(100) + b"\x00" + one)
    body = b"WEBP" + header + _riff(b"ANIM", bytes(6)) + frame * frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


def animation() -> Iterator[HostileFile]:
    """3.2 G pixels to decode from a few KB (4000x4000 x 200 frames) in each animated format; a GIF whose last
    frame grows the canvas past the pixel limit; an APNG declaring a million frames; an honest small animation."""
    yield HostileFile("animation", "gif-canvas-4000-x200", gif_canvas(4000, 4000, 200), TOO_LARGE, ".gif")
    yield HostileFile("animation", "apng-canvas-4000-x200", apng_canvas(4000, 200), TOO_LARGE, ".png")
    yield HostileFile("animation", "webp-canvas-4000-x200", webp_canvas(4000, 200), TOO_LARGE, ".webp")
    grows = gif_canvas(16, 16, 3, at=(BOMB_SIDE - 1, BOMB_SIDE - 1))
    yield HostileFile("animation", "gif-frame-grows-canvas", grows, TOO_LARGE, ".gif")
    yield HostileFile("animation", "apng-declares-1m-frames", apng_canvas(64, 3, declared=10**6), TOO_MANY, ".png")
    yield HostileFile("animation", "gif-5000-frames", gif_canvas(8, 8, 5000), TOO_MANY, ".gif")
    frames = [Image.fromarray(np.roll(picture(), 16 * i, axis=1)) for i in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=500, loop=0)
    yield HostileFile("animation", "gif-honest", buf.getvalue(), ANALYZED, ".gif")


# -- JPEG scans ------------------------------------------------------------------------------------------------

_NEXT_MARKER = re.compile(b"\xff+[^\x00\xff\xd0-\xd7]")


def jpeg_many_scans(side: int, scans: int) -> bytes:
    """A progressive JPEG with its last scan (and the Huffman table before it) repeated: libjpeg warns about the
    progression and decodes every copy, passing over the whole picture each time."""
    data = encode(np.full((side, side), 128, np.uint8), "JPEG", progressive=True, quality=90)
    last = data.rindex(b"\xff\xda")
    start = data.rindex(b"\xff\xc4", 0, last) if b"\xff\xc4" in data[:last] else last
    found = _NEXT_MARKER.search(data, last + 2 + int.from_bytes(data[last + 2 : last + 4], "big"))
    assert found is not None
    end = found.start()
    return data[:end] + data[start:end] * scans + data[end:]


def jpeg_scans() -> Iterator[HostileFile]:
    yield HostileFile("jpeg-scans", "jpeg-1000-scans", jpeg_many_scans(2000, 1000), TOO_LARGE, ".jpg")
    yield HostileFile(
        "jpeg-scans", "jpeg-progressive-honest", encode(picture(), "JPEG", progressive=True), ANALYZED, ".jpg"
    )


# -- videos ----------------------------------------------------------------------------------------------------


def video(seconds: float = 2.0, fps: int = 5, fmt: str = "mp4", side: int = 32) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream("libvpx-vp9" if fmt == "webm" else "libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuv420p"
        for i in range(int(seconds * fps)):
            pixels = np.roll(picture(side, side), 4 * i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def sparse_matroska(times_s: tuple[float, ...] = (0.0, 36_000.0)) -> bytes:
    """A Matroska video of one tiny frame at each time (ten hours long in 1.5 KB)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for time_s in times_s:
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(time_s * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def without_duration(matroska: bytes) -> bytes:
    """The same Matroska file with its Duration element turned into a Void one: nothing declares its length."""
    at = matroska.find(b"\x44\x89")
    assert at > 0 and matroska[at + 2] & 0x80, "no Duration element"
    size = matroska[at + 2] & 0x7F
    return matroska[:at] + b"\xec" + bytes([0x80 | (size + 1)]) + bytes(size + 1) + matroska[at + 3 + size :]


def videos() -> Iterator[HostileFile]:
    long = without_duration(sparse_matroska())
    yield HostileFile("video", "mkv-10h-no-duration", long, TOO_LARGE, ".mkv")
    mp4, webm = video(), video(fmt="webm")
    yield HostileFile("video", "mp4-honest", mp4, ANALYZED, ".mp4")
    yield HostileFile("video", "mp4-truncated", mp4[: len(mp4) // 2], CORRUPT, ".mp4")
    yield HostileFile("video", "webm-truncated", webm[: len(webm) // 2], CORRUPT, ".webm")
    yield HostileFile("video", "mp4-ftyp-then-junk", b"\x00\x00\x00\x18ftypmp42" + bytes(64), CORRUPT, ".mp4")
    audio = b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A mp42" + bytes(64)
    yield HostileFile("video", "m4a-audio", audio, UNSUPPORTED, ".m4a")


# -- HEIF and AVIF ---------------------------------------------------------------------------------------------


def declared_size(data: bytes, width: int, height: int) -> bytes:
    """A HEIF or AVIF whose image spatial extents (ispe) declare another size than the coded picture's."""
    at = data.find(b"ispe")
    assert at > 0
    return data[: at + 8] + struct.pack(">II", width, height) + data[at + 16 :]


def heif_avif() -> Iterator[HostileFile]:
    for fmt, name in (("HEIF", "heif"), ("AVIF", "avif")):
        exif = exif_block({0x0131: b"phone\x00camera"}, orientation=6)
        data = encode(picture(), fmt, exif=exif, quality=50)
        suffix = ".heic" if name == "heif" else ".avif"
        yield HostileFile(name, f"{name}-picture-rotated", data, ANALYZED, suffix)
        yield HostileFile(name, f"{name}-bomb", declared_size(data, BOMB_SIDE, BOMB_SIDE), TOO_LARGE, suffix)
        yield HostileFile(name, f"{name}-truncated", data[: len(data) // 2], CORRUPT, suffix)


# -- decompression bombs ---------------------------------------------------------------------------------------


def png_bomb(side: int = BOMB_SIDE) -> bytes:
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = deflated_zeros(side * (side + 1))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def tiff_file(pages: list[tuple[int, int, bytes]], loop: bool = False) -> bytes:
    """A little-endian TIFF of 8-bit grey pages (width, height, deflated strip), one strip each; ``loop``: the
    last page's next-IFD offset points back at the first."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    first, link = 0, 4
    for width, height, strip in pages:
        at_strip = len(out)
        out += strip + b"\x00" * (len(strip) % 2)
        at_ifd = len(out)
        tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1)]
        tags += [(273, 4, at_strip), (278, 4, height), (279, 4, len(strip))]
        out += struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, k, 1, v) for t, k, v in tags)
        struct.pack_into("<I", out, link, at_ifd)
        first = first or at_ifd
        link = len(out)
        out += b"\x00\x00\x00\x00"
    if loop:
        struct.pack_into("<I", out, link, first)
    return bytes(out)


def bmp_bomb(side: int = BOMB_SIDE) -> bytes:
    """An 8-bit run-length BMP declaring side x side pixels whose data is one end-of-bitmap code."""
    palette, pixels = bytes(256 * 4), b"\x00\x01"
    offset = 14 + 40 + len(palette)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, side, side, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return head + info + palette + pixels


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small baseline JPEG whose frame header declares another size."""
    data = bytearray(encode(picture(), "JPEG"))
    at = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def bombs() -> Iterator[HostileFile]:
    """Declared sizes over the pixel limit with (where the format allows) data that really inflates to them."""
    side = BOMB_SIDE
    yield HostileFile("bomb", "png-bomb", png_bomb(), TOO_LARGE, ".png")
    yield HostileFile("bomb", "gif-bomb", gif_canvas(side, side, 1), TOO_LARGE, ".gif")
    yield HostileFile("bomb", "gif-bomb-65535", gif_canvas(65535, 65535, 1), TOO_LARGE, ".gif")
    yield HostileFile("bomb", "webp-bomb", webp_canvas(side, 1), TOO_LARGE, ".webp")
    yield HostileFile("bomb", "tiff-bomb", tiff_file([(side, side, deflated_zeros(side * side))]), TOO_LARGE, ".tif")
    yield HostileFile("bomb", "bmp-bomb", bmp_bomb(), TOO_LARGE, ".bmp")
    yield HostileFile("bomb", "jpeg-bomb", jpeg_declaring(side, side), TOO_LARGE, ".jpg")


def tiff_pages() -> Iterator[HostileFile]:
    pixel = zlib.compress(b"\x80")
    yield HostileFile("tiff-pages", "tiff-5000-pages", tiff_file([(1, 1, pixel)] * 5000), TOO_MANY, ".tif")
    page = (64, 64, zlib.compress(picture(64, 64)[:, :, 0].tobytes()))
    yield HostileFile("tiff-pages", "tiff-ifd-loop", tiff_file([page, page], loop=True), ANALYZED, ".tif")
    yield HostileFile("tiff-pages", "tiff-3-pages", tiff_file([page] * 3), ANALYZED, ".tif")


# -- one format's magic, another's body; nothing; half a file -------------------------------------------------


def mismatched() -> Iterator[HostileFile]:
    jpeg, png = encode(picture(), "JPEG"), encode(picture(), "PNG")
    yield HostileFile("mismatch", "png-magic-jpeg-body", b"\x89PNG\r\n\x1a\n" + jpeg, CORRUPT, ".png")
    yield HostileFile("mismatch", "gif-magic-png-body", b"GIF89a" + png, CORRUPT, ".gif")
    yield HostileFile("mismatch", "jpeg-magic-png-body", b"\xff\xd8\xff" + png, CORRUPT, ".jpg")
    yield HostileFile(
        "mismatch", "heic-brand-jpeg-body", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + jpeg, CORRUPT, ".heic"
    )
    yield HostileFile("mismatch", "png-named-jpg", png, ANALYZED, ".jpg")
    yield HostileFile("mismatch", "text-named-jpg", b"this is a text file, not a picture\n", UNSUPPORTED, ".jpg")
    yield HostileFile("mismatch", "bm-text", b"BMW 320i, 1998, blue\n" * 4, UNSUPPORTED, ".bmp")
    yield HostileFile("mismatch", "riff-wave", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32), UNSUPPORTED, ".webp")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"/>'
    yield HostileFile("mismatch", "svg", svg, UNSUPPORTED, ".svg")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    yield HostileFile("mismatch", "eps", eps, UNSUPPORTED, ".jpg")


def empty() -> Iterator[HostileFile]:
    yield HostileFile("empty", "zero-bytes", b"", EMPTY, ".jpg")


def truncated() -> Iterator[HostileFile]:
    """Each picture format cut in half (videos and HEIF/AVIF are cut in their own generators)."""
    pixels = picture(128, 96)
    for fmt, suffix, outcome in (
        ("JPEG", ".jpg", CORRUPT),
        ("PNG", ".png", CORRUPT),
        ("GIF", ".gif", CORRUPT),
        ("WEBP", ".webp", CORRUPT),
        ("BMP", ".bmp", CORRUPT),
        ("TIFF", ".tif", CORRUPT),
    ):
        whole = encode(pixels, fmt)
        yield HostileFile("truncated", f"{fmt.lower()}-truncated", whole[: len(whole) // 2], outcome, suffix)


GENERATORS: tuple[Callable[[], Iterator[HostileFile]], ...] = (
    png_text,
    exif_text,
    exif_orientation,
    animation,
    jpeg_scans,
    videos,
    heif_avif,
    bombs,
    tiff_pages,
    mismatched,
    empty,
    truncated,
)
