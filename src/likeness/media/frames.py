"""Frames of videos (PyAV) and animated images (Pillow), sampled for analysis.

A frame is kept at the start, then every ``frame_every_s`` seconds, and at the end; a frame whose PDQ hash
is within ``frame_skip_distance`` of the last kept one is skipped (a still shot yields one frame, not hundreds).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial

import av
import numpy as np
import pdqhash
from PIL import Image, ImageSequence

from likeness.errors import CorruptMedia, TooLarge
from likeness.settings import MediaLimits

Pixels = Callable[[], np.ndarray]  # a frame's RGB pixels, computed on demand


@dataclass(frozen=True)
class Frame:
    index: int  # in the stream, from 0
    time_s: float
    pixels: np.ndarray  # RGB, at most analysis_max_side
    pdq_bits: np.ndarray | None = field(default=None, compare=False)  # hashed while sampling; reused by analysis
    pdq_quality: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Sampled:
    frames: list[Frame]
    width: int
    height: int
    duration_s: float
    decoded: int
    warnings: list[str]


@dataclass(frozen=True)
class Video:
    container: av.container.InputContainer
    stream: av.VideoStream
    width: int
    height: int
    duration_s: float
    frame_rate: float  # the stream's average rate, else its base rate (what vPDQ uses)


@contextmanager
def open_video(data: bytes, limits: MediaLimits) -> Iterator[Video]:
    """An open video within the duration and frame-size limits; decoding errors in the body become CorruptMedia."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise CorruptMedia("no video stream")
            stream = container.streams.video[0]
            duration = (container.duration or 0) / 1e6
            if duration > limits.max_duration_s:
                raise TooLarge(f"video is {duration:.0f} s long; the limit is {limits.max_duration_s:.0f} s")
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > limits.max_pixels:
                raise TooLarge(f"{width}x{height} video frames are over the {limits.max_pixels}-pixel limit")
            rate = float(stream.average_rate or stream.base_rate or 0)
            yield Video(container, stream, width, height, duration, rate)
    except av.FFmpegError as exc:
        raise CorruptMedia(f"cannot decode video: {exc}") from exc


def sample_video(data: bytes, limits: MediaLimits) -> Sampled:
    with open_video(data, limits) as video:
        frames = _video_frames(video.container, video.stream, limits)
        return _sample(frames, video.width, video.height, video.duration_s, limits)


def sample_animation(img: Image.Image, limits: MediaLimits) -> Sampled:
    """An animated GIF or WebP (its frame count was checked by the caller)."""

    def frames() -> Iterator[tuple[int, float, Pixels]]:
        clock = 0.0
        for index, frame in enumerate(ImageSequence.Iterator(img)):
            rgb = frame.convert("RGB")  # the iterator reuses one object: copy the frame out now
            yield index, clock, partial(_fit, rgb, limits.analysis_max_side)
            clock += (frame.info.get("duration") or 100) / 1000

    sampled = _sample(frames(), img.width, img.height, 0.0, limits)
    last = sampled.frames[-1].time_s if sampled.frames else 0.0
    return Sampled(sampled.frames, img.width, img.height, last, sampled.decoded, sampled.warnings)


def _video_frames(
    container: av.container.InputContainer, stream: av.VideoStream, limits: MediaLimits
) -> Iterator[tuple[int, float, Pixels]]:
    w, h = stream.codec_context.width, stream.codec_context.height
    scale = min(1.0, limits.analysis_max_side / max(w, h, 1))
    width, height = max(2, round(w * scale)), max(2, round(h * scale))
    base = stream.time_base or 0
    for index, frame in enumerate(container.decode(stream)):
        time_s = float(frame.pts * base) if frame.pts is not None else 0.0
        yield index, time_s, partial(frame.to_ndarray, format="rgb24", width=width, height=height)


def _sample(
    frames: Iterator[tuple[int, float, Pixels]], width: int, height: int, duration: float, limits: MediaLimits
) -> Sampled:
    """Frames are converted to pixels only when kept: scaling every decoded frame would cost more than decoding."""
    kept: list[Frame] = []
    warnings: list[str] = []
    last_hash: np.ndarray | None = None
    next_time, decoded = 0.0, 0
    pending: tuple[int, float, Pixels] | None = None
    for index, time_s, pixels in frames:
        decoded += 1
        if decoded > limits.max_video_frames:
            warnings.append(f"stopped after {limits.max_video_frames} frames (the limit); the rest is not analysed")
            break
        pending = (index, time_s, pixels)  # the last frame is kept even if off the sampling grid
        if time_s + 1e-9 < next_time:
            continue
        next_time = time_s + limits.frame_every_s
        last_hash = _keep(kept, Frame(index, time_s, np.ascontiguousarray(pixels())), last_hash, limits)
        pending = None
        if len(kept) >= limits.max_sampled_frames:
            warnings.append(f"sampled the first {len(kept)} frames only (the limit)")
            break
    if pending is not None:
        _keep(kept, Frame(pending[0], pending[1], np.ascontiguousarray(pending[2]())), last_hash, limits)
    if not kept:
        raise CorruptMedia("no decodable frame")
    return Sampled(kept, width, height, duration, decoded, warnings)


def _keep(kept: list[Frame], frame: Frame, last_hash: np.ndarray | None, limits: MediaLimits) -> np.ndarray:
    bits, quality = pdqhash.compute(np.ascontiguousarray(frame.pixels))
    bits = np.asarray(bits)
    if last_hash is None or int((bits != last_hash).sum()) > limits.frame_skip_distance:
        kept.append(replace(frame, pdq_bits=bits, pdq_quality=int(quality)))
        return bits
    return last_hash


def _fit(img: Image.Image, side: int) -> np.ndarray:
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(img)
