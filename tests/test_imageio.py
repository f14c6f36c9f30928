"""Safe decoding of uploads: every bad file gives one clear ImageInputError, every odd good file a correct RGB image."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from recsys.imageio import ImageInputError, load_upload


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def huge_png_header(width: int, height: int) -> bytes:
    """A few hundred bytes claiming a ``width`` x ``height`` 1-bit PNG: decoding it would need gigabytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    idat = zlib.compress(b"\x00" * 64)  # a sliver of the image data; the rest is "missing"
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def assert_one_sentence(message: str) -> None:
    assert message and message[0].isupper() and message.endswith(".")
    assert "\n" not in message and "Traceback" not in message


# ---------------------------------------------------------------------- refused
def test_zero_byte_upload_is_refused():
    with pytest.raises(ImageInputError, match="empty") as info:
        load_upload(b"")
    assert_one_sentence(str(info.value))


def test_non_image_renamed_jpg_is_refused():
    with pytest.raises(ImageInputError, match="not an image") as info:
        load_upload(b"%PDF-1.4 this is really a document, not a photo\n" * 20, name="holiday.jpg")
    assert "holiday.jpg" in str(info.value)
    assert_one_sentence(str(info.value))


def test_truncated_jpeg_is_refused():
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    data = encode(photo, "JPEG", quality=90)
    with pytest.raises(ImageInputError, match="truncated") as info:
        load_upload(data[: len(data) // 2])
    assert_one_sentence(str(info.value))


def test_decompression_bomb_is_refused_before_decoding():
    data = huge_png_header(20000, 20000)
    assert len(data) < 1000
    started = time.perf_counter()
    with pytest.raises(ImageInputError, match="400 megapixels") as info:
        load_upload(data)
    # Refused from the header: had the pixels been decoded, the missing data would say "truncated" instead.
    assert "limit of 50 megapixels" in str(info.value)
    assert time.perf_counter() - started < 1.0
    assert_one_sentence(str(info.value))


def test_oversized_header_below_pils_own_limit_is_refused_by_ours():
    with pytest.raises(ImageInputError, match="9000 x 9000 pixels"):
        load_upload(huge_png_header(9000, 9000))  # 81 Mpx: PIL would only warn, the studio's limit is 50 Mpx


def test_a_huge_jpeg_decodes_at_a_reduced_scale_within_the_limit():
    # The trial of a new user: a 64-megapixel photo (phones take them) was refused. A JPEG decodes at 1/2, 1/4 or 1/8
    # of its side, so the limit is on the pixels decoded; a PNG of that size still decodes whole and is refused.
    big = Image.new("RGB", (8000, 8000), (200, 30, 40))
    image = load_upload(encode(big, "JPEG", quality=50), name="phone.jpg")
    assert max(image.size) <= 2048 and image.size[0] == image.size[1]
    assert image.getpixel((10, 10))[0] > 150  # the red survived the reduced decoding
    with pytest.raises(ImageInputError, match="8000 x 8000 pixels"):
        load_upload(huge_png_header(8000, 8000))


def test_max_pixels_is_configurable():
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageInputError, match="megapixels"):
        load_upload(data, max_pixels=5000)
    assert load_upload(data, max_pixels=10_000).size == (100, 100)


def test_disallowed_format_is_refused():
    data = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"  # PIL would run Ghostscript on this
    with pytest.raises(ImageInputError, match="not an image"):
        load_upload(data)


# ---------------------------------------------------------------------- normalised
def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    image = load_upload(encode(cmyk, "JPEG", quality=95))
    assert image.mode == "RGB"
    red, green, blue = image.getpixel((16, 16))
    assert red > 200 and green < 60 and blue < 60


def test_png_alpha_is_composited_on_white():
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 10, 20))
    image = load_upload(encode(rgba, "PNG"))
    assert image.mode == "RGB"
    assert image.getpixel((15, 10)) == (255, 255, 255)  # transparent -> white, not black
    assert image.getpixel((5, 10)) == (255, 0, 0)


def test_16bit_greyscale_is_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")  # really a 16-bit file
    grey = np.asarray(load_upload(data))[..., 0].astype(int)
    assert grey[0, 0] == 0 and grey[0, -1] == 255
    assert abs(grey[0, 32] - 130) <= 2  # mid-range stays mid-grey instead of saturating to white
    assert np.all(np.diff(grey[0]) >= 0)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    image = load_upload(buffer.getvalue())
    assert image.mode == "RGB"
    assert image.getpixel((8, 8)) == (255, 0, 0)


def test_exif_rotated_photo_is_shown_upright():
    # Stored landscape 40x20 with the left half red; orientation 6 means "rotate 90 degrees clockwise to view".
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    image = load_upload(encode(stored, "JPEG", quality=95, exif=exif))
    assert image.size == (20, 40)
    top_red, _, _ = image.getpixel((10, 5))
    _, _, bottom_blue = image.getpixel((10, 35))
    assert top_red > 200 and bottom_blue > 200  # the stored left edge is now on top


def test_large_photo_is_reduced_to_max_side():
    data = encode(Image.new("RGB", (3000, 1500), (10, 200, 30)), "JPEG")
    image = load_upload(data, max_side=1000)
    assert max(image.size) == 1000 and image.size[0] == 2 * image.size[1]
    assert load_upload(data, max_side=None).size == (3000, 1500)


def test_plain_rgb_roundtrip_is_independent_of_input():
    source = Image.new("RGB", (12, 7), (1, 2, 3))
    image = load_upload(encode(source, "PNG"))
    assert image.mode == "RGB" and image.size == (12, 7) and image.getpixel((0, 0)) == (1, 2, 3)
