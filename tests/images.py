"""Test pictures from installed packages (scikit-image, matplotlib) and hostile files made on the fly."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from skimage import data

from likeness.services.corpus import GRACE_HOPPER, resize
from likeness.services.subjects import Photo

__all__ = ["GRACE_HOPPER", "resize"]  # re-exported for the tests


def astronaut() -> np.ndarray:
    return data.astronaut()


def grace_hopper() -> np.ndarray:
    return np.asarray(Image.open(GRACE_HOPPER).convert("RGB"))


NO_FACE = {
    "coffee": data.coffee,
    "chelsea": data.chelsea,
    "rocket": data.rocket,
    "brick": data.brick,
    "hubble": data.hubble_deep_field,
}


def encode(pixels: np.ndarray, fmt: str = "JPEG", **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **kw)
    return buf.getvalue()


def write(path: Path, pixels: np.ndarray, fmt: str = "JPEG", **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(pixels, fmt, **kw))
    return path


def astronaut_face_crop() -> np.ndarray:
    """The astronaut's head and shoulders only (one face)."""
    return astronaut()[20:280, 110:340]


def png_bomb(side: int = 20_000) -> bytes:
    """A valid PNG header for side x side pixels whose IDAT inflates to side*(side+1) zero bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def many_frame_gif(frames: int = 10_000) -> bytes:
    first = Image.new("P", (8, 8), 0)
    rest = [Image.new("P", (8, 8), 1 + i % 2) for i in range(frames - 1)]
    buf = io.BytesIO()
    first.save(buf, "GIF", save_all=True, append_images=rest, duration=10, optimize=False)
    return buf.getvalue()


def with_orientation(pixels: np.ndarray, orientation: int) -> bytes:
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def truncated_jpeg() -> bytes:
    whole = encode(astronaut())
    return whole[: len(whole) // 2]


def video(
    frames: list[np.ndarray], fps: int = 5, fmt: str = "mp4", codec: str = "libx264", bitrate: int | None = None
) -> bytes:
    """Encode RGB frames with PyAV; each is letterboxed (aspect kept) into the first one's size, even sides."""
    import av

    h, w = (s - s % 2 for s in frames[0].shape[:2])
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if bitrate:
            stream.bit_rate = bitrate
        for pixels in frames:
            fitted = np.asarray(ImageOps.pad(Image.fromarray(pixels), (w, h), color=(0, 0, 0)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(fitted, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def ten_hour_video() -> bytes:
    """Two tiny frames ten hours apart: a long video in 1.5 KB."""
    from fractions import Fraction

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        stream.time_base = Fraction(1, 1)
        for pts in (0, 36_000):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def animated_gif(frames: list[np.ndarray], duration_ms: int = 500) -> bytes:
    first, *rest = (Image.fromarray(f).resize((256, 256)) for f in frames)
    buf = io.BytesIO()
    first.save(buf, "GIF", save_all=True, append_images=rest, duration=duration_ms, loop=0)
    return buf.getvalue()


def photos(paths: list[Path]) -> list[Photo]:
    """Files as the services take them: a name and the bytes."""
    return [Photo(str(p), p.read_bytes()) for p in paths]
