"""Video: frames/s of sampling + hashing + face detection on a generated 1080p clip, against decoding alone.

    python bench/video.py

The clip (20 s, 30 fps, H.264) cuts between package-shipped pictures every 2 s, the astronaut's portrait in
every other shot, each shot slowly panning so consecutive frames differ. Decoding alone (every frame to RGB at
full size) is the baseline in the same run; the analysis figure covers what `likeness scan` does to a video.
"""

from __future__ import annotations

import io
import time

import av
import numpy as np
from PIL import Image, ImageOps
from skimage import data

from bench.common import table, write_section
from likeness.analyze import Pipeline
from likeness.media import decode
from likeness.settings import Settings

W, H, FPS, SECONDS = 1920, 1080, 30, 20


def clip() -> bytes:
    shots = [data.astronaut()[20:280, 110:340], data.coffee(), data.astronaut()[20:280, 110:340], data.rocket()]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(FPS * SECONDS):
            shot = shots[(i // (2 * FPS)) % len(shots)]
            base = np.asarray(ImageOps.pad(Image.fromarray(shot), (W, H)))
            frame = np.roll(base, (i % (2 * FPS)) * 3, axis=1)  # a slow pan
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def main() -> None:
    video = clip()
    frames = FPS * SECONDS
    t = time.perf_counter()
    with av.open(io.BytesIO(video)) as container:
        for frame in container.decode(container.streams.video[0]):
            frame.to_ndarray(format="rgb24")
    decode_only = time.perf_counter() - t
    settings = Settings()
    t = time.perf_counter()
    media = decode(video, settings.media)
    sampling = time.perf_counter() - t
    pipeline = Pipeline(settings)
    t = time.perf_counter()
    analysis = pipeline.analyze(video)
    full = time.perf_counter() - t
    rows = [
        ["decode every frame to RGB (baseline)", f"{frames / decode_only:.0f}", "1.00x"],
        [
            f"sample ({len(media.frames)} frames kept) with limits",
            f"{frames / sampling:.0f}",
            f"{decode_only / sampling:.2f}x",
        ],
        ["full analysis (sample + PDQ + faces + NSFW)", f"{frames / full:.0f}", f"{decode_only / full:.2f}x"],
    ]
    write_section(
        "video",
        "Video analysis",
        f"""
A generated {W}x{H} H.264 clip, {SECONDS} s at {FPS} fps ({frames} frames, {len(video) / 2**20:.1f} MiB), one process,
one core. Frames/s are over the clip's frames; the ratio is the decode-only baseline's time over each row's.
The analysis sampled {len(media.frames)} frames (one a second, plus first and last, near-identical ones skipped)
and reported {len(analysis.faces)} face(s) (one per person across frames).

{table(["step", "clip frames/s", "speed vs decode-only"], rows)}
""",
    )


if __name__ == "__main__":
    main()
