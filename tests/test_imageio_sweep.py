"""The image-decoding sweep of issue 14: every form of transparency, large but legal metadata, and 16-bit and float
images with extreme values decode to the colours a viewer shows (composited on white); only broken files -- and
real decompression bombs -- are refused, with one sentence.

Every image is built in memory; the expected pixels are worked out by hand in each case's comment. Raw PNGs are
written chunk by chunk where PIL cannot save the form (low bit depths, 16-bit colour keys and alpha).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from recsys.imageio import MAX_METADATA_CHUNK, MAX_METADATA_TOTAL, ImageInputError, load_upload, to_rgb

WHITE = (255, 255, 255)


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def raw_png(width: int, bit_depth: int, colour_type: int, row: bytes, before_data: bytes = b"", after_data: bytes = b"") -> bytes:
    """A one-row PNG with the packed pixel bytes ``row`` (filter 0) and extra chunks before and after the pixel data."""
    header = struct.pack(">IIBBBBB", width, 1, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + before_data
        + chunk(b"IDAT", zlib.compress(b"\x00" + row))
        + after_data
        + chunk(b"IEND", b"")
    )


def grey_key(value: int) -> bytes:
    return chunk(b"tRNS", struct.pack(">H", value))


def palette_png(alphas: bytes | int) -> bytes:
    """Four pixels of palette entries red, green, blue, black, with ``transparency`` as PIL writes it."""
    image = Image.new("P", (4, 1))
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0])
    image.putdata([0, 1, 2, 3])
    return encode(image, "PNG", transparency=alphas)


def gif_with_transparent_index() -> bytes:
    image = Image.new("P", (4, 1))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    image.putdata([0, 1, 0, 1])
    return encode(image, "GIF", transparency=0)


def rgba_webp() -> bytes:
    pixels = np.array([[[255, 0, 0, 0], [0, 0, 255, 255], [0, 0, 0, 128]]], dtype=np.uint8)
    return encode(Image.fromarray(pixels, "RGBA"), "WEBP", lossless=True, exact=True)


def rotated_keyed_png() -> bytes:
    """Stored 2 x 1 (key colour, red) with EXIF orientation 6: shown 1 x 2, the key on top, still transparent."""
    image = Image.fromarray(np.array([[[10, 20, 30], [255, 0, 0]]], dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "PNG", transparency=(10, 20, 30), exif=exif)


# Each case: (bytes, expected RGB pixels in row-major order). A half alpha a = 128 over white gives
# c * 128/255 + 255 * 127/255 = 127 for c = 0 (alpha_composite rounds down); the tolerance is 1.
TRANSPARENCY = {
    # palette, tRNS with an alpha per entry (0, 128, 255, 255): red gone, green half over white, blue, black
    "palette-alphas": (palette_png(bytes([0, 128, 255, 255])), [WHITE, (127, 255, 127), (0, 0, 255), (0, 0, 0)]),
    # palette, tRNS shorter than the palette: the entries after it are opaque
    "palette-short-trns": (palette_png(bytes([255, 0])), [(255, 0, 0), WHITE, (0, 0, 255), (0, 0, 0)]),
    # palette, one transparent index (PIL reads it as an int)
    "palette-one-index": (palette_png(2), [(255, 0, 0), (0, 255, 0), WHITE, (0, 0, 0)]),
    # 4-bit palette, index 0 (red) transparent
    "palette-4bit": (
        raw_png(2, 4, 3, bytes([0x01]), chunk(b"PLTE", bytes([255, 0, 0, 0, 0, 255])) + chunk(b"tRNS", b"\x00")),
        [WHITE, (0, 0, 255)],
    ),
    # grey + alpha: (0, a=0) white, (0, 128) 127, (0, 255) black, (200, 255) 200
    "LA": (
        encode(Image.fromarray(np.array([[[0, 0], [0, 128], [0, 255], [200, 255]]], dtype=np.uint8), "LA"), "PNG"),
        [WHITE, (127,) * 3, (0,) * 3, (200,) * 3],
    ),
    # 16-bit grey + alpha: (0, 0) white, (0, 65535) black, (65535, 65535) white
    "LA-16bit": (raw_png(3, 16, 4, struct.pack(">6H", 0, 0, 0, 65535, 65535, 65535)), [WHITE, (0, 0, 0), WHITE]),
    "RGBA": (
        encode(Image.fromarray(np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 0, 255, 128]]], dtype=np.uint8)), "PNG"),
        [WHITE, (255, 0, 0), (127, 127, 255)],
    ),
    "RGBA-16bit": (
        raw_png(2, 16, 6, struct.pack(">8H", 0, 0, 0, 0, 65535, 0, 0, 65535)),
        [WHITE, (255, 0, 0)],
    ),
    # RGB with a colour key: only the exact key colour turns white
    "RGB-key": (
        encode(Image.fromarray(np.array([[[10, 20, 30], [10, 20, 31]]], dtype=np.uint8)), "PNG", transparency=(10, 20, 30)),
        [WHITE, (10, 20, 31)],
    ),
    # 16-bit RGB with a colour key (1000, 2000, 3000); the other pixel is pure red
    "RGB-16bit-key": (
        raw_png(2, 16, 2, struct.pack(">6H", 1000, 2000, 3000, 65535, 0, 0), chunk(b"tRNS", struct.pack(">3H", 1000, 2000, 3000))),
        [WHITE, (255, 0, 0)],
    ),
    "L-key": (encode(Image.fromarray(np.array([[7, 9]], dtype=np.uint8)), "PNG", transparency=7), [WHITE, (9, 9, 9)]),
    # 1-bit grey (0, 1) with key 0: the black pixel is transparent, the white one white
    "L-1bit-key": (raw_png(2, 1, 0, bytes([0b01000000]), grey_key(0)), [WHITE, WHITE]),
    # 2-bit grey 3, 2, 1, 0 (255, 170, 85, 0) with key 1: PIL keeps the key unscaled, the decoder must scale it
    "L-2bit-key": (raw_png(4, 2, 0, bytes([0b11100100]), grey_key(1)), [WHITE, (170,) * 3, WHITE, (0,) * 3]),
    # 4-bit grey 15, 5, 6, 0 (x17: 255, 85, 102, 0) with key 5
    "L-4bit-key": (raw_png(4, 4, 0, bytes([0xF5, 0x60]), grey_key(5)), [WHITE, WHITE, (102,) * 3, (0,) * 3]),
    # 16-bit grey 1000, 0, 32768 with key 1000: 0 -> 0, 32768 -> round(32768 / 257) = 128
    "L-16bit-key": (raw_png(3, 16, 0, struct.pack(">3H", 1000, 0, 32768), grey_key(1000)), [WHITE, (0,) * 3, (128,) * 3]),
    "GIF-transparent-index": (gif_with_transparent_index(), [WHITE, (0, 255, 0), WHITE, (0, 255, 0)]),
    "WebP-alpha": (rgba_webp(), [WHITE, (0, 0, 255), (127, 127, 127)]),
    "TIFF-RGBA": (
        encode(Image.fromarray(np.array([[[255, 0, 0, 0], [0, 0, 255, 255], [0, 0, 0, 128]]], dtype=np.uint8)), "TIFF"),
        [WHITE, (0, 0, 255), (127, 127, 127)],
    ),
    "TIFF-LA": (encode(Image.fromarray(np.array([[[0, 0], [0, 255]]], dtype=np.uint8), "LA"), "TIFF"), [WHITE, (0, 0, 0)]),
    "EXIF-rotated-key": (rotated_keyed_png(), [WHITE, (255, 0, 0)]),
}


@pytest.mark.parametrize("data, expected", TRANSPARENCY.values(), ids=TRANSPARENCY.keys())
def test_transparency_is_composited_on_white(data, expected):
    image = load_upload(data)
    assert image.mode == "RGB"
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    np.testing.assert_allclose(pixels, np.array(expected), atol=1)


@pytest.mark.parametrize(
    "mode, pixel, expected",
    [
        ("PA", (1, 0), WHITE),  # palette entry 1 (blue) with alpha 0
        ("PA", (1, 255), (0, 0, 255)),
        ("La", (100, 0), WHITE),  # premultiplied: nothing of the colour left at alpha 0
        ("RGBa", (0, 0, 128, 128), (127, 127, 255)),  # premultiplied half blue: blue 255 at half alpha
    ],
)
def test_alpha_modes_pil_builds_only_in_memory(mode, pixel, expected):
    image = Image.new(mode, (1, 1), pixel)
    if mode == "PA":
        image.putpalette([255, 0, 0, 0, 0, 255])
    np.testing.assert_allclose(np.asarray(to_rgb(image))[0, 0], expected, atol=1)


# ---------------------------------------------------------------------- large but legal metadata
MEGABYTES = 3  # above PIL's default MAX_TEXT_CHUNK of 1 MiB, within the studio's MAX_METADATA_CHUNK
TEXT = "fashion " * (MEGABYTES * 2**20 // 8)
PHOTO = Image.new("RGB", (4, 2), (40, 90, 160))


def png_with_text(**add) -> bytes:
    info = PngImagePlugin.PngInfo()
    if "itxt" in add:
        info.add_itxt("XML:com.adobe.xmp", add["itxt"], zip=True)  # Photoshop's XMP, compressed
    if "ztxt" in add:
        info.add_text("Comment", add["ztxt"], zip=True)
    if "text" in add:
        info.add_text("Comment", add["text"])
    return encode(PHOTO, "PNG", pnginfo=info)


def big_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x927C] = b"\x01" * (MEGABYTES * 2**20)  # MakerNote: cameras keep megabytes of their own data here
    return exif


def tiff_with_xmp() -> bytes:
    return encode(PHOTO, "TIFF", tiffinfo={700: TEXT.encode()})


def png_text_after_pixels() -> bytes:
    """A compressed text chunk after IDAT: PIL reads it in load(), not in open()."""
    payload = b"Comment\x00\x00" + zlib.compress(TEXT.encode())
    data = encode(PHOTO, "PNG")
    return data[:-12] + chunk(b"zTXt", payload) + data[-12:]


METADATA = {
    "PNG-iTXt-compressed": lambda: png_with_text(itxt=TEXT),
    "PNG-zTXt": lambda: png_with_text(ztxt=TEXT),
    "PNG-tEXt": lambda: png_with_text(text=TEXT),
    "PNG-zTXt-after-pixels": png_text_after_pixels,
    "PNG-iCCP": lambda: encode(PHOTO, "PNG", icc_profile=b"\x00" * (MEGABYTES * 2**20)),
    "PNG-eXIf": lambda: encode(PHOTO, "PNG", exif=big_exif()),
    "WebP-EXIF": lambda: encode(PHOTO, "WEBP", lossless=True, exif=big_exif()),
    "WebP-ICC-XMP": lambda: encode(PHOTO, "WEBP", lossless=True, icc_profile=b"\x00" * 2**20, xmp=TEXT.encode()),
    "TIFF-XMP": tiff_with_xmp,
    "TIFF-ICC": lambda: encode(PHOTO, "TIFF", icc_profile=b"\x00" * (MEGABYTES * 2**20)),
    "JPEG-ICC-many-segments": lambda: encode(PHOTO, "JPEG", quality=100, icc_profile=b"\x00" * (MEGABYTES * 2**20)),
    "GIF-comment": lambda: encode(PHOTO.quantize(4), "GIF", comment=TEXT.encode()),
}


@pytest.mark.parametrize("build", METADATA.values(), ids=METADATA.keys())
def test_large_legal_metadata_decodes(build):
    image = load_upload(build())
    assert image.size == (4, 2)
    # lossless formats keep the colour exactly; JPEG within its quantisation
    np.testing.assert_allclose(np.asarray(image)[1, 3], (40, 90, 160), atol=3)


def test_big_exif_still_orients_the_photo():
    stored = Image.new("RGB", (4, 2), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 2, 2))  # left half red
    exif = big_exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    image = load_upload(encode(stored, "PNG", exif=exif))
    assert image.size == (2, 4)
    assert image.getpixel((0, 0)) == (255, 0, 0) and image.getpixel((0, 3)) == (0, 0, 255)


def test_unreadable_exif_keeps_the_stored_pixels():
    # an eXIf chunk that is not TIFF data: a viewer ignores the orientation, so must we
    image = load_upload(encode(PHOTO, "PNG", exif=b"\x00" * 64))
    assert image.size == (4, 2) and image.getpixel((0, 0)) == (40, 90, 160)


# ---------------------------------------------------------------------- refused: bombs and broken files
def compressed_chunk(kind: bytes, prefix: bytes, size: int) -> bytes:
    return chunk(kind, prefix + zlib.compress(b"\x00" * size, 1))


def png_with_chunks(*chunks: bytes) -> bytes:
    data = encode(PHOTO, "PNG")
    cut = data.index(b"IDAT") - 4
    return data[:cut] + b"".join(chunks) + data[cut:]


def assert_one_sentence(message: str) -> None:
    assert message and message[0].isupper() and message.endswith(".")
    assert "\n" not in message and "Traceback" not in message


BOMBS = {
    # a few tens of kilobytes in the file, a chunk beyond MAX_METADATA_CHUNK once expanded
    "zTXt": lambda: png_with_chunks(compressed_chunk(b"zTXt", b"Comment\x00\x00", MAX_METADATA_CHUNK + 2**20)),
    "iCCP": lambda: png_with_chunks(compressed_chunk(b"iCCP", b"icc\x00\x00", MAX_METADATA_CHUNK + 2**20)),
    # each chunk within the limit, together beyond MAX_METADATA_TOTAL
    "many-chunks": lambda: png_with_chunks(
        *[compressed_chunk(b"zTXt", f"C{i}".encode() + b"\x00\x00", MAX_METADATA_TOTAL // 3 + 2**20) for i in range(3)]
    ),
}


@pytest.mark.parametrize("build", BOMBS.values(), ids=BOMBS.keys())
def test_metadata_decompression_bomb_is_refused(build):
    data = build()
    assert len(data) < 400_000
    with pytest.raises(ImageInputError, match="metadata that expands to more than 32 MB") as info:
        load_upload(data)
    assert_one_sentence(str(info.value))


def png_without_checks(bit_depth: int, pixel_data: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", 2, 1, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixel_data) + chunk(b"IEND", b"")


BROKEN = {
    "short-tRNS": (raw_png(2, 8, 0, bytes([7, 9]), chunk(b"tRNS", b"\x07")), "damaged"),  # a grey key needs 2 bytes
    "cut-16bit-PNG": (raw_png(64, 16, 0, bytes(range(128)))[:-40], "truncated"),
    "unknown-row-filter": (png_without_checks(8, zlib.compress(b"\x09\x00\x00")), "damaged"),  # filters are 0..4
    "pixel-data-not-zlib": (png_without_checks(8, b"garbage!"), "damaged"),
    "bit-depth-7": (png_without_checks(7, zlib.compress(b"\x00\x00\x00")), "not an image"),
    "cut-float-TIFF": (encode(Image.fromarray(np.ones((64, 64), np.float32)), "TIFF")[:2000], "truncated"),
}


@pytest.mark.parametrize("data, says", BROKEN.values(), ids=BROKEN.keys())
def test_broken_files_are_refused_with_one_sentence(data, says):
    with pytest.raises(ImageInputError, match=says) as info:
        load_upload(data)
    assert_one_sentence(str(info.value))


# ---------------------------------------------------------------------- 16-bit and float extremes
def tiff(values: np.ndarray, mode: str | None = None) -> bytes:
    image = Image.frombytes(mode, (values.shape[1], values.shape[0]), values.tobytes()) if mode else Image.fromarray(values)
    return encode(image, "TIFF")


INF, NAN = np.inf, np.nan
FLOAT = {
    # within 0..1: the float convention, 0 black and 1 white; 0.25 -> 63.75 -> 64
    "unit-range": ([0.0, 0.25, 1.0], [0, 64, 255]),
    "constant-in-range": ([0.5, 0.5, 0.5], [128, 128, 128]),
    # any other range is stretched from the finite minimum to the finite maximum
    "negative": ([-5.0, 0.0, 5.0], [0, 128, 255]),
    "full-float32-range": ([-3.4e38, 0.0, 3.4e38], [0, 128, 255]),
    "0-to-255": ([0.0, 51.0, 255.0], [0, 51, 255]),
    # +inf white, -inf and NaN black; the finite values keep their own scale
    "inf": ([INF, 0.0, 1.0], [255, 0, 255]),
    "nan": ([NAN, 0.25, 1.0], [0, 64, 255]),
    "all-non-finite": ([-INF, INF, NAN], [0, 255, 0]),
    "all-nan": ([NAN, NAN, NAN], [0, 0, 0]),
    # a constant outside 0..1 cannot be stretched: clipped
    "constant-above-1": ([7.0, 7.0, 7.0], [255, 255, 255]),
    "constant-negative": ([-3.0, -3.0, -3.0], [0, 0, 0]),
}


@pytest.mark.parametrize("values, expected", FLOAT.values(), ids=FLOAT.keys())
def test_float_images_with_extreme_values(values, expected):
    data = tiff(np.array([values], dtype=np.float32))
    assert Image.open(io.BytesIO(data)).mode == "F"
    grey = np.asarray(load_upload(data))
    assert (grey == grey[..., :1]).all()  # grey stays grey
    assert grey[0, :, 0].tolist() == expected


SIXTEEN_BIT = {
    # 16-bit files use their full range: round(v / 257)
    "full-range": ([0, 32768, 65535], [0, 128, 255]),
    "constant-white": ([65535] * 3, [255] * 3),
    "constant-black": ([0] * 3, [0] * 3),
    "dark-values-stay-dark": ([0, 300, 1000], [0, 1, 4]),  # not stretched: a viewer shows them almost black
}


@pytest.mark.parametrize("values, expected", SIXTEEN_BIT.values(), ids=SIXTEEN_BIT.keys())
@pytest.mark.parametrize("container", ["PNG-I;16", "TIFF-I;16", "TIFF-I;16B"])
def test_16bit_images_with_extreme_values(container, values, expected):
    if container == "PNG-I;16":
        data = raw_png(3, 16, 0, struct.pack(">3H", *values))
    elif container == "TIFF-I;16":
        data = tiff(np.array([values], dtype="<u2"), "I;16")
    else:
        data = tiff(np.array([values], dtype=">u2"), "I;16B")
    assert Image.open(io.BytesIO(data)).mode == container.split("-")[1]
    assert np.asarray(load_upload(data))[0, :, 0].tolist() == expected


INT32 = {
    "within-0-255": ([0, 128, 255], [0, 128, 255]),
    "constant-small": ([7, 7, 7], [7, 7, 7]),
    "16-bit-values": ([0, 1000, 65535], [0, 4, 255]),
    # negative or beyond 16 bits: stretched; (2**31 * 255 + (2**32 - 1) // 2) // (2**32 - 1) = 128
    "full-int32-range": ([-(2**31), 0, 2**31 - 1], [0, 128, 255]),
    "negative": ([-5, 0, 5], [0, 128, 255]),
    "beyond-16-bits": ([70000, 75000, 80000], [0, 128, 255]),
    "constant-negative": ([-5, -5, -5], [0, 0, 0]),
    "constant-huge": ([100000] * 3, [255] * 3),
}


@pytest.mark.parametrize("values, expected", INT32.values(), ids=INT32.keys())
def test_32bit_integer_images_with_extreme_values(values, expected):
    data = tiff(np.array([values], dtype=np.int32))
    assert Image.open(io.BytesIO(data)).mode == "I"
    assert np.asarray(load_upload(data))[0, :, 0].tolist() == expected
