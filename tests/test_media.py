"""Decoding with limits: every hostile input becomes a typed error with a clear message."""

from __future__ import annotations

import pytest

from likeness.errors import CorruptMedia, EmptyFile, MediaError, TooLarge, TooManyFrames, UnsupportedFormat
from likeness.media import decode, sniff
from likeness.settings import MediaLimits
from tests import images

LIMITS = MediaLimits()


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", EmptyFile, "empty"),
        (images.truncated_jpeg(), CorruptMedia, "truncated"),
        (b"this is a text file, not a picture\n", UnsupportedFormat, "not a supported image"),
        (images.png_bomb(), TooLarge, "pixels"),
        (images.many_frame_gif(), TooManyFrames, "1000 frames"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, CorruptMedia, "cannot decode video"),
    ],
    ids=["empty", "truncated-jpeg", "text-as-jpg", "png-bomb-20000x20000", "gif-10000-frames", "broken-video"],
)
def test_hostile_input_is_a_typed_error(data: bytes, error: type[MediaError], words: str) -> None:
    with pytest.raises(error) as caught:
        decode(data, LIMITS)
    assert words in str(caught.value)
    assert caught.value.kind != "error"


def test_pixel_limit_is_checked_from_the_header_before_decoding() -> None:
    small = images.encode(images.astronaut(), "PNG")
    with pytest.raises(TooLarge, match="512x512"):
        decode(small, MediaLimits(max_pixels=100_000))


def test_byte_limit() -> None:
    with pytest.raises(TooLarge, match="byte limit"):
        decode(images.encode(images.astronaut()), MediaLimits(max_bytes=1000))


def test_invalid_exif_orientation_is_analysed_as_stored_with_a_warning() -> None:
    media = decode(images.with_orientation(images.astronaut()[:, :400], 9), LIMITS)
    assert (media.width, media.height) == (400, 512)
    assert any("orientation 9" in w for w in media.warnings)


def test_exif_rotation_is_applied() -> None:
    media = decode(images.with_orientation(images.astronaut()[:, :400], 6), LIMITS)
    assert media.pixels.shape[:2] == (400, 512)
    assert (media.width, media.height) == (512, 400)
    assert media.warnings == ()


def test_jpeg_draft_mode_downscales_large_pictures_while_decoding() -> None:
    big = images.encode(images.resize(images.astronaut(), 4.0))  # 2048 px
    media = decode(big, MediaLimits(analysis_max_side=600))
    assert max(media.pixels.shape[:2]) == 600
    assert (media.width, media.height) == (2048, 2048)
    assert media.scale == pytest.approx(600 / 2048)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "BMP", "TIFF", "JPEG"])
def test_sniff_by_magic_bytes(fmt: str) -> None:
    data = images.encode(images.astronaut()[:64, :64], fmt)
    assert sniff(data) == fmt.lower()
    assert decode(data, LIMITS).format == fmt.lower()
