"""What a file declares about itself, read from its container structure without decoding a pixel.

A decoder does its expensive work before it can notice that the work is hostile: Pillow composites every frame
of an animation onto the whole canvas (a 6 KB GIF of 200 one-pixel frames on a 4000x4000 canvas took 38 s),
libjpeg passes over every coefficient again for each progressive scan (1000 scans of a 7000x7000 picture, 290 KB,
took 72 s), libwebp allocates two canvases when a file is opened. These walkers read the few header fields and
markers that say how much work a file asks for, so ``decode`` refuses it first. They never raise on broken
input: a truncated or mangled structure yields what was read so far, and the decoder reports the damage.
"""

from __future__ import annotations

import re
import struct

_NEXT_JPEG_MARKER = re.compile(rb"\xff+[^\x00\xff\xd0-\xd7]")  # 0xFF00 is stuffing, 0xFFD0-D7 restart markers
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # markers without a length field
_JPEG_SOI, _JPEG_EOI, _JPEG_SOS = 0xD8, 0xD9, 0xDA
_GIF_BLOCK = re.compile(rb"[!,;]")  # Pillow skips any other byte between blocks, one at a time
EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # Matroska and WebM


def demuxer(data: bytes) -> str | None:
    """FFmpeg's demuxer for these bytes: "mov" (MP4, QuickTime), "matroska" (Matroska, WebM), None for others."""
    if data[4:8] == b"ftyp":
        return "mov"
    return "matroska" if data.startswith(EBML_MAGIC) else None


def iso_brands(data: bytes) -> list[str]:
    """The major brand, then the compatible brands, of an ISO base media file's ``ftyp`` box (MP4, QuickTime,
    HEIF, AVIF); at most the first 4 KiB are read."""
    size = int.from_bytes(data[0:4], "big")
    end = min(len(data), size if size >= 16 else 16, 4096)
    brands = [data[8:12]] + [data[at : at + 4] for at in range(16, end - 3, 4)]
    return [brand.decode("latin-1") for brand in brands if len(brand) == 4]


def jpeg_scans(data: bytes) -> int:
    """Start-of-scan markers in a JPEG and in any JPEG appended to it (an MPO's other pictures), counted by
    walking the marker segments; a scan's entropy-coded data is skipped to the next marker."""
    scans, pos = 0, 2
    while 0 <= pos < len(data) - 3:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF or marker in _JPEG_STANDALONE or marker == _JPEG_SOI:
            pos += 1 if marker == 0xFF else 2
        elif marker == _JPEG_EOI:
            found = data.find(b"\xff\xd8\xff", pos)
            pos = -1 if found < 0 else found + 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
            if marker == _JPEG_SOS:
                scans += 1
                following = _NEXT_JPEG_MARKER.search(data, pos)
                pos = following.start() if following else -1
    return scans


def gif_layout(data: bytes, max_frames: int) -> tuple[int, tuple[int, int]]:
    """(frames, canvas) of a GIF: image descriptors counted up to ``max_frames``, and the canvas grown to hold
    every frame counted (Pillow grows it the same way when a frame reaches past the logical screen)."""
    if len(data) < 13:
        return 0, (0, 0)
    width, height = struct.unpack_from("<HH", data, 6)
    pos, frames = 13 + _colour_table(data[10]), 0
    while frames < max_frames and (block := _GIF_BLOCK.search(data, pos)) and block.group() != b";":
        pos = block.start()
        if block.group() == b"!":
            pos = _skip_sub_blocks(data, pos + 2)
            continue
        if pos + 11 > len(data):
            break
        x, y, w, h = struct.unpack_from("<HHHH", data, pos + 1)
        width, height, frames = max(width, x + w), max(height, y + h), frames + 1
        pos = _skip_sub_blocks(data, pos + 11 + _colour_table(data[pos + 9]))
    return frames, (width, height)


def _colour_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    end = len(data)
    while pos < end and (size := data[pos]):
        pos += size + 1
    return pos + 1


def webp_canvas(data: bytes) -> tuple[int, int] | None:
    """The canvas a WebP declares (extended, lossless or lossy header), None when none of them is readable."""
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8 " and len(data) >= 30:
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None
