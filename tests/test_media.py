"""Decoding with limits: every hostile input becomes a typed error with a clear message."""

from __future__ import annotations

import io
import struct
import zlib

import av
import numpy as np
import pytest
from PIL import Image, features

from likeness.analyze.vpdq import hash_video
from likeness.errors import CorruptMedia, EmptyFile, MediaError, TooLarge, TooManyFrames, UnsupportedFormat
from likeness.media import IMAGE_FORMATS, VIDEO_FORMATS, decode, sniff
from likeness.media.containers import gif_layout, jpeg_scans
from likeness.settings import MediaLimits
from tests import hostile, images

pytestmark = pytest.mark.timeout(120)  # a safety net against a hang

LIMITS = MediaLimits()


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", EmptyFile, "empty"),
        (images.truncated_jpeg(), CorruptMedia, "truncated"),
        (b"this is a text file, not a picture\n", UnsupportedFormat, "not a supported image"),
        (hostile.png_bomb(20_000), TooLarge, "pixels"),
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


# -- HEIF and AVIF ----------------------------------------------------------------------------------------------


def test_avif_is_built_into_pillow() -> None:
    assert features.check("avif")


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_heif_and_avif_decode_upright_with_their_true_format(fmt: str, orientation: int) -> None:
    stored = hostile.picture(96, 64)
    exif = hostile.exif_block({}, orientation=orientation)
    media = decode(hostile.encode(stored, fmt, exif=exif, quality=90), LIMITS)
    upright = {1: stored, 6: np.rot90(stored, -1), 8: np.rot90(stored, 1)}[orientation]
    assert media.format == fmt.lower()
    assert (media.width, media.height) == (upright.shape[1], upright.shape[0])
    assert media.pixels.shape == upright.shape
    error = np.abs(media.pixels.astype(int) - upright).mean()
    assert error < 12, error  # lossy, but the same picture the right way up (a wrong turn differs by ~80)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heif_and_avif_obey_the_pixel_limit(fmt: str) -> None:
    data = hostile.encode(hostile.picture(96, 64), fmt)
    with pytest.raises(TooLarge, match="96x64"):
        decode(data, MediaLimits(max_pixels=5000))


# -- sniffing: content decides, a video is never a picture nor the reverse ---------------------------------------


def _ftyp(major: str, *compatible: str) -> bytes:
    body = major.encode() + b"\x00\x00\x00\x00" + b"".join(b.encode() for b in compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08free"


@pytest.mark.parametrize(
    ("brands", "fmt"),
    [
        (("heic", "mif1", "MiHE", "miaf", "MiHB", "heic"), "heif"),  # an iPhone photo
        (("qt  ", "qt  "), "mov"),  # an iPhone video
        (("mp42", "mp41", "mp42", "isom"), "mp4"),  # an export from Apple Photos
        (("mif1", "heic"), "heif"),
        (("mif1", "avif", "miaf"), "avif"),
        (("avif", "avif", "mif1", "miaf", "MA1B"), "avif"),  # libavif
        (("avis", "avif", "avis", "msf1", "iso8", "mif1", "miaf", "MA1B"), "avif"),  # an animated AVIF
        (("msf1", "hevc"), "heif"),
        (("heix", "mif1"), "heif"),
        (("isom", "isom", "iso2", "avc1", "mp41"), "mp4"),  # FFmpeg
        (("isom", "mif1"), "mp4"),  # a video brand decides, whatever it lists
        (("3gp6", "isom"), "mp4"),
        (("abcd", "efgh"), "mp4"),  # unknown: FFmpeg's demuxer judges it
    ],
)
def test_iso_media_brands_tell_pictures_from_videos(brands: tuple[str, ...], fmt: str) -> None:
    assert sniff(_ftyp(*brands)) == fmt


@pytest.mark.parametrize("major", ["M4A ", "M4B ", "crx "])
def test_iso_audio_and_raw_photos_are_not_analysed(major: str) -> None:
    with pytest.raises(UnsupportedFormat, match=major.strip()):
        sniff(_ftyp(major, "isom"))


def _clip(fmt: str, codec: str = "libx264", **options: str) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt, options=options) as out:
        stream = out.add_stream(codec, rate=5)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            pixels = np.roll(hostile.picture(32, 32), 4 * i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("container", "codec", "options", "fmt"),
    [
        ("mp4", "libx264", {}, "mp4"),
        ("mov", "libx264", {}, "mov"),
        ("3gp", "libx264", {}, "mp4"),
        ("ipod", "libx264", {}, "mp4"),
        ("mp4", "libx264", {"movflags": "frag_keyframe+empty_moov"}, "mp4"),
        ("mp4", "libx265", {}, "mp4"),
        ("matroska", "libx264", {}, "mkv"),
        ("webm", "libvpx-vp9", {}, "webm"),
    ],
)
def test_videos_sniff_and_decode_as_videos(container: str, codec: str, options: dict[str, str], fmt: str) -> None:
    data = _clip(container, codec, **options)
    assert sniff(data) == fmt and fmt in VIDEO_FORMATS
    media = decode(data, LIMITS)
    assert media.format == fmt and media.frame_count == 5


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF", "AVIF"])
def test_pictures_sniff_as_pictures(fmt: str) -> None:
    for data in (hostile.encode(hostile.picture(), fmt), _animated(fmt)):
        if data:
            assert sniff(data) in IMAGE_FORMATS


def _animated(fmt: str) -> bytes | None:
    if fmt not in ("PNG", "GIF", "WEBP", "TIFF", "AVIF"):
        return None
    frames = [Image.fromarray(np.roll(hostile.picture(), 8 * i, axis=1)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def test_an_animated_avif_is_sampled_as_an_animation() -> None:
    animated = _animated("AVIF")
    assert animated is not None
    media = decode(animated, LIMITS)
    assert media.format == "avif" and media.frame_count == 3 and len(media.frames) >= 2


def test_two_byte_magic_alone_is_not_enough() -> None:
    with pytest.raises(UnsupportedFormat):
        sniff(b"BMW 320i, 1998\n" * 4)
    with pytest.raises(UnsupportedFormat):
        sniff(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32))


# -- what a file declares is refused before decoding ------------------------------------------------------------


def test_jpeg_scans_are_counted_without_decoding() -> None:
    picture = hostile.picture()
    assert jpeg_scans(hostile.encode(picture, "JPEG")) == 1
    assert jpeg_scans(hostile.encode(picture, "JPEG", progressive=True)) == 10  # libjpeg's colour script
    assert jpeg_scans(hostile.jpeg_many_scans(64, 500)) == 506
    assert jpeg_scans(hostile.encode(picture, "JPEG")[:100]) == 0  # truncated before its scan: no error here


def test_scan_limit_refuses_before_decoding() -> None:
    progressive = hostile.encode(hostile.picture(), "JPEG", progressive=True)
    assert decode(progressive, LIMITS).format == "jpeg"
    with pytest.raises(TooLarge, match="10 JPEG scans; the limit is 9"):
        decode(progressive, MediaLimits(max_jpeg_scans=9))


def test_gif_layout_counts_frames_and_the_canvas_they_need() -> None:
    assert gif_layout(hostile.gif_canvas(40, 30, 7), 100) == (7, (40, 30))
    assert gif_layout(hostile.gif_canvas(40, 30, 7), 5) == (5, (40, 30))  # stops counting at the cap
    assert gif_layout(hostile.gif_canvas(16, 16, 3, at=(99, 199)), 100) == (3, (100, 200))


def test_animation_pixel_limit() -> None:
    gif = hostile.gif_canvas(100, 100, 10)  # 100,000 pixels to decode
    assert decode(gif, MediaLimits(max_animation_pixels=100_000)).frame_count == 10
    with pytest.raises(TooLarge, match="10 frames, 100000 pixels to decode in all; the limit is 99999"):
        decode(gif, MediaLimits(max_animation_pixels=99_999))


def test_tiff_pages_count_each_its_own_size() -> None:
    pages = [(64, 64, zlib.compress(bytes(64 * 64))), (200, 100, zlib.compress(bytes(200 * 100)))]
    tiff = hostile.tiff_file(pages)
    assert decode(tiff, LIMITS).frame_count == 2
    with pytest.raises(TooLarge, match="2 frames, 24096 pixels"):
        decode(tiff, MediaLimits(max_animation_pixels=24_095))


def test_bomb_over_pillows_own_limit_is_too_large_too() -> None:
    """An operator may raise max_pixels over Pillow's 89 M pixel warning: the warning must not escape as such."""
    with pytest.raises(TooLarge, match="decompression bomb"):
        decode(hostile.png_bomb(10_000), MediaLimits(max_pixels=200_000_000))


# -- videos: the duration limit holds whatever the container declares --------------------------------------------


def test_a_video_that_declares_no_duration_is_measured_and_stopped() -> None:
    undeclared = hostile.without_duration(hostile.video(3.0, fmt="matroska"))
    media = decode(undeclared, LIMITS)
    assert media.duration_s == pytest.approx(2.8)  # the last frame's time: nothing declared it
    with pytest.raises(TooLarge, match=r"video runs past 1 s \(its container said nothing\); the limit is 1 s"):
        decode(undeclared, MediaLimits(max_duration_s=1.0))
    with pytest.raises(TooLarge, match="runs past"):
        hash_video(undeclared, MediaLimits(max_duration_s=1.0))
    assert len(hash_video(undeclared, LIMITS)) == 3  # a frame a second


def test_a_video_longer_than_its_container_says_is_stopped() -> None:
    sparse = hostile.sparse_matroska()
    at = sparse.find(b"\x44\x89\x88")
    lying = sparse[: at + 3] + struct.pack(">d", 1000.0) + sparse[at + 11 :]  # "1 s long"; runs ten hours
    with pytest.raises(TooLarge, match=r"runs past 36000 s \(its container said 1 s\)"):
        decode(lying, LIMITS)
    with pytest.raises(TooLarge, match="runs past 36000 s"):
        hash_video(lying, LIMITS)
