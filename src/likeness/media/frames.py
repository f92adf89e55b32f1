"""Frames of videos (PyAV) and animated images (Pillow), sampled for analysis.

A frame is kept at the start, then every ``frame_every_s`` seconds, and at the end; a frame whose PDQ hash
is within ``frame_skip_distance`` of the last kept one is skipped (a still shot yields one frame, not hundreds).

Limits hold whatever a file declares: a video's length is what its container says, else what its stream says
(duration, or frames over rate), and in any case decoding stops with TooLarge at the first frame past
``max_duration_s`` (a Matroska file may declare no duration at all); an animation stops at its frame and
decoded-pixel limits even if its header lied about them.
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

from likeness.errors import CorruptMedia, TooLarge, TooManyFrames
from likeness.media.containers import demuxer
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
    duration_s: float | None  # declared by the container or the stream; None when neither says
    frame_rate: float  # the stream's average rate, else its base rate (what vPDQ uses)
    max_duration_s: float

    def decode(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """Every frame with its time from the first one; TooLarge at the first frame past the duration limit."""
        start: float | None = None
        for index, frame in enumerate(self.container.decode(self.stream)):
            time_s = _time(frame, index, self.frame_rate)
            start = time_s if start is None else start
            if time_s - start > self.max_duration_s:
                raise TooLarge(
                    f"video runs past {time_s - start:.0f} s (its container said {_said(self.duration_s)}); "
                    f"the limit is {self.max_duration_s:.0f} s"
                )
            yield time_s - start, frame


def _time(frame: av.VideoFrame, index: int, rate: float) -> float:
    """A frame's presentation time; a stream without timestamps is timed by its rate."""
    if frame.time is not None:
        return float(frame.time)
    return index / rate if rate > 0 else 0.0


def _said(duration: float | None) -> str:
    return "nothing" if duration is None else f"{duration:.0f} s"


@contextmanager
def open_video(data: bytes, limits: MediaLimits) -> Iterator[Video]:
    """An open video within the duration and frame-size limits, read by the demuxer its magic bytes name (FFmpeg
    would otherwise probe every format it knows); decoding errors in the body become CorruptMedia."""
    if (name := demuxer(data)) is None:
        raise CorruptMedia("not an MP4, QuickTime, Matroska or WebM video")
    try:
        # metadata_errors: a tag that is not UTF-8 would otherwise fail the open itself
        with av.open(io.BytesIO(data), mode="r", format=name, metadata_errors="replace") as container:
            if not container.streams.video:
                raise CorruptMedia("no video stream")
            stream = container.streams.video[0]
            if stream.codec_context is None:
                raise CorruptMedia("the video stream's codec is unknown")
            rate = float(stream.average_rate or stream.base_rate or 0)
            duration = _declared_duration(container, stream, rate)
            if duration is not None and duration > limits.max_duration_s:
                raise TooLarge(f"video is {duration:.0f} s long; the limit is {limits.max_duration_s:.0f} s")
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > limits.max_pixels:
                raise TooLarge(f"{width}x{height} video frames are over the {limits.max_pixels}-pixel limit")
            yield Video(container, stream, width, height, duration, rate, limits.max_duration_s)
    except av.FFmpegError as exc:
        raise CorruptMedia(f"cannot decode video: {exc}") from exc


def _declared_duration(container: av.container.InputContainer, stream: av.VideoStream, rate: float) -> float | None:
    """The longest of what the container and the video stream declare (duration, or frame count over rate)."""
    said = []
    if container.duration is not None and container.duration > 0:
        said.append(container.duration / 1e6)
    if stream.duration is not None and stream.duration > 0 and stream.time_base:
        said.append(float(stream.duration * stream.time_base))
    if stream.frames > 0 and rate > 0:
        said.append(stream.frames / rate)
    return max(said) if said else None


def sample_video(data: bytes, limits: MediaLimits) -> Sampled:
    with open_video(data, limits) as video:
        last = [0.0]
        sampled = _sample(_video_frames(video, limits, last), video.width, video.height, 0.0, limits)
        duration = video.duration_s if video.duration_s is not None else last[0]
        return replace(sampled, duration_s=duration)


def sample_animation(img: Image.Image, limits: MediaLimits) -> Sampled:
    """An animated GIF, PNG, WebP or AVIF, or a TIFF's pages (the caller checked what the file declares; a lying
    header is stopped here, before the frame past a limit is decoded)."""

    def frames() -> Iterator[tuple[int, float, Pixels]]:
        clock, area = 0.0, 0
        for index, frame in enumerate(ImageSequence.Iterator(img)):
            area += _within(index, frame.size, area, limits)
            yield index, clock, partial(_fit_frame, img, index, limits.analysis_max_side)
            clock += (frame.info.get("duration") or 100) / 1000

    sampled = _sample(frames(), img.width, img.height, 0.0, limits)
    last = sampled.frames[-1].time_s if sampled.frames else 0.0
    return Sampled(sampled.frames, img.width, img.height, last, sampled.decoded, sampled.warnings)


def _within(index: int, size: tuple[int, int], decoded: int, limits: MediaLimits) -> int:
    """The pixels of frame ``index``, once it is known to keep the animation within its limits."""
    pixels = size[0] * size[1]
    if index >= limits.max_frames:
        raise TooManyFrames(f"more than {limits.max_frames} frames; the limit is {limits.max_frames}")
    if pixels > limits.max_pixels or decoded + pixels > limits.max_animation_pixels:
        raise TooLarge(
            f"frame {index} ({size[0]}x{size[1]}) would take the decoded pixels over the limit "
            f"({limits.max_pixels} a frame, {limits.max_animation_pixels} in all)"
        )
    return pixels


def _video_frames(video: Video, limits: MediaLimits, last: list[float]) -> Iterator[tuple[int, float, Pixels]]:
    """Decoded frames, each with a function that scales it for analysis; ``last`` ends as the last frame's time."""
    w, h = video.width, video.height
    scale = min(1.0, limits.analysis_max_side / max(w, h, 1))
    width, height = max(2, round(w * scale)), max(2, round(h * scale))
    for index, (time_s, frame) in enumerate(video.decode()):
        last[0] = time_s
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


def _fit_frame(img: Image.Image, index: int, side: int) -> np.ndarray:
    """Frame ``index`` in RGB, scaled for analysis. Only kept frames are converted (converting every frame of a
    large canvas cost more than decoding it), while the iterator is still on them; a TIFF page that is not kept is
    never decoded at all."""
    if img.tell() != index:  # the sampler stopped at a limit and came back for the last frame it had seen
        img.seek(index)
    rgb = img.convert("RGB")
    rgb.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(rgb)
