"""Safe decoding of user uploads: any photo a user may hand the app becomes an upright RGB image or one clear error.

:func:`load_upload` refuses, with an :class:`ImageInputError` whose message is one sentence:

- empty uploads and files that are not images (a renamed ``.txt``, a PDF, ...);
- formats outside a short allow-list (e.g. EPS, which PIL would hand to Ghostscript);
- decompression bombs: the pixel count is read from the header and checked *before* any pixel is decoded, and
  compressed metadata (PNG zTXt/iTXt text, ICC profiles) may expand to at most :data:`MAX_METADATA_CHUNK` bytes
  a chunk and :data:`MAX_METADATA_TOTAL` bytes in all;
- truncated or damaged files.

and normalises the rest the way an image viewer shows it: EXIF orientation applied, CMYK converted (through the
embedded ICC profile when there is one), only the first frame of animations kept, very large photos reduced, and

- transparency in every form composited on white: an alpha channel (``RGBA``, ``LA``, ``PA``, premultiplied
  ``RGBa``/``La``), a palette with one transparent index or an alpha per entry (PNG tRNS, GIF), and a colour key
  (PNG tRNS on greyscale of any bit depth or on RGB): pixels equal to the key become white;
- 16-bit greyscale (``I;16``, ``I;16B``) scaled by its bit depth, 65535 -> 255 (not clipped at 255); 32-bit integer
  (``I``) kept when within 0..255, scaled by 16 bits when within 0..65535, else stretched from its minimum to its
  maximum (black to white);
- 32-bit float (``F``): values within 0..1 are the float convention of TIFF/EXR viewers (0 black, 1 white); any other
  range is stretched from its finite minimum to its finite maximum; ``+inf`` shows white, ``-inf`` and NaN black
  (as ImageMagick shows them); a constant image outside 0..1 is clipped (below 0 black, above 1 white).

Known approximation: PIL decodes 16-bit RGB PNGs to 8 bits a channel, so their colour key is matched on the high
byte; colours within 1/256 of the key in every channel, which an 8-bit display cannot tell apart from it, turn
white too.
"""

from __future__ import annotations

import io
import logging
import re
import struct

import numpy as np
from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

logger = logging.getLogger(__name__)

#: Largest accepted image in pixels (about an 8000 x 6000 photo); PIL's own warning level is ~89 Mpx.
DEFAULT_MAX_PIXELS = 50_000_000
#: Longest side kept after decoding; encoders work at 224 px, and the app shows thumbnails.
DEFAULT_MAX_SIDE = 2048
#: Formats a browser upload can reasonably be; everything else is refused unopened (PIL's JPEG opener also
#: reads the multi-picture JPEGs some phones write, which then report the format "MPO").
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
#: Largest decompressed PNG text or ICC chunk. The PNG specification sets no size limit on metadata, and Photoshop's
#: XMP (document history) reaches megabytes, which PIL's default of 1 MiB refuses; 32 MiB keeps real files and still
#: stops a chunk of zeros that would expand to gigabytes (expansion stops at the limit, so memory stays bounded).
MAX_METADATA_CHUNK = 32 * 2**20
#: Largest decompressed PNG text in all chunks together (PIL's own default, 64 MiB).
MAX_METADATA_TOTAL = 64 * 2**20
# The limits are PIL's module settings, read as it parses each chunk: importing this module sets them for the process.
PngImagePlugin.MAX_TEXT_CHUNK = MAX_METADATA_CHUNK
PngImagePlugin.MAX_TEXT_MEMORY = MAX_METADATA_TOTAL

_WHITE = (255, 255, 255)
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
# PIL's messages when a PNG's text or ICC chunks expand beyond MAX_TEXT_CHUNK / MAX_TEXT_MEMORY.
_METADATA_BOMB = re.compile(r"MAX_TEXT_CHUNK|MAX_TEXT_MEMORY")


class ImageInputError(ValueError):
    """An upload cannot be used as an image; the message is one sentence the app can show as it is."""


def load_upload(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = DEFAULT_MAX_SIDE,
    name: str | None = None,
) -> Image.Image:
    """Decode uploaded bytes into an upright RGB image.

    Parameters
    ----------
    data : bytes
        The file's content.
    max_pixels : int
        Refuse images with more pixels than this (width x height, from the header, before decoding).
    max_side : int or None
        Shrink the decoded image so its longer side is at most this (aspect ratio kept); None keeps it.
    name : str, optional
        The file name, only to make messages clearer.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``, upright, independent of ``data``.

    Raises
    ------
    ImageInputError
        For an empty, non-image, disallowed, oversized (pixels or metadata), truncated or damaged upload.
    """
    label = f"The file '{name}'" if name else "The upload"
    if not data:
        raise ImageInputError(f"{label} is empty (0 bytes); choose an image file.")
    try:
        # Image.open reads only the header, so the size check below runs before any pixel is decoded.
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        # PIL refuses headers beyond twice Image.MAX_IMAGE_PIXELS itself, still before decoding anything.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"has {int(found.group(1)) / 1e6:.0f} megapixels" if found else "is far too large to decode safely"
        raise ImageInputError(
            f"{label} {size}, above the limit of {max_pixels / 1e6:.0f} megapixels; upload a smaller image."
        ) from None
    except UnidentifiedImageError:
        raise ImageInputError(
            f"{label} is not an image in a supported format ({', '.join(ALLOWED_FORMATS)})."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        _refuse_metadata_bomb(exc, label)
        raise ImageInputError(f"{label} has a damaged image header ({exc}).") from None

    file_format = image.format  # the copies below forget it
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageInputError(f"{label} declares an empty {width} x {height} image.")
    if max_side and image.format in ("JPEG", "MPO"):
        # JPEG can decode straight at 1/2, 1/4 or 1/8 scale: far less memory and time for huge photos, so the limit
        # is on the pixels decoded (a 64-megapixel phone photo decodes at a quarter of its side).
        try:
            image.draft("RGB" if image.mode == "RGB" else None, (max_side, max_side))
        except (OSError, SyntaxError, ValueError) as exc:  # then decoded whole, and limited as a whole
            logger.info("no reduced JPEG decoding for %s: %s", label, exc)
    if image.size[0] * image.size[1] > max_pixels:
        raise ImageInputError(
            f"{label} is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels), "
            f"above the limit of {max_pixels / 1e6:.0f} megapixels; upload a smaller image."
        )

    try:
        image.load()  # only the first frame of an animation
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        _refuse_metadata_bomb(exc, label)  # text chunks after the pixel data are read by load()
        raise ImageInputError(f"{label} is truncated or damaged and cannot be decoded ({exc}).") from None
    try:
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        # Damaged EXIF spoils only the orientation, not the pixels: a viewer shows the image as stored.
        logger.debug("ignoring unreadable EXIF of %s: %s", name or "an upload", exc)

    if file_format == "PNG" and "transparency" in image.info:
        image.info["transparency"] = _png_key_as_decoded(data, image.info["transparency"], image.mode)
    rgb = to_rgb(image)
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb


#: Shortest side a photo to search with must have: a 16 x 16 thumbnail holds too few pixels to tell a garment from its
#: background or to read its colour, and the encoders upsample it to 224 px of blur.
MIN_PHOTO_SIDE = 32


def require_photo_size(image: Image.Image, name: str | None = None, min_side: int = MIN_PHOTO_SIDE) -> None:
    """Refuse a decoded photo whose shorter side is under ``min_side`` pixels (the pages search with photos only;
    :func:`load_upload` itself decodes images of any size).

    Raises
    ------
    ImageInputError
        One sentence naming the file, its size and the minimum.
    """
    width, height = image.size
    if min(width, height) < min_side:
        label = f"The file '{name}'" if name else "The upload"
        raise ImageInputError(f"{label} is {width} x {height} pixels, too small to tell a garment; upload a photo at "
                              f"least {min_side} pixels on each side.")


def _refuse_metadata_bomb(exc: Exception, label: str) -> None:
    if _METADATA_BOMB.search(str(exc)):
        raise ImageInputError(
            f"{label} carries metadata that expands to more than {MAX_METADATA_CHUNK // 2**20} MB a chunk or "
            f"{MAX_METADATA_TOTAL // 2**20} MB in all, too much to decode safely; save the image without it."
        ) from None


def _png_key_as_decoded(data: bytes, key, mode: str):
    """A PNG colour key (tRNS) in the values PIL decoded the pixels to: PIL stores the key in the file's bit depth but
    scales 2- and 4-bit greyscale up to 0..255 and keeps the high byte of 16-bit RGB."""
    if data[12:16] != b"IHDR" or len(data) < 26:
        return key
    bit_depth = data[24]
    if mode == "L" and isinstance(key, int) and bit_depth in (2, 4):
        return key * (255 // (2**bit_depth - 1))
    if mode == "RGB" and isinstance(key, tuple) and bit_depth == 16:
        return tuple(channel >> 8 for channel in key)
    return key


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a decoded image of any PIL mode to RGB the way a viewer would show it (see the module docstring).

    A colour key in ``image.info["transparency"]`` is taken in the image's decoded values (``load_upload`` fixes
    PIL's keys of 2/4-bit greyscale and 16-bit RGB PNGs before calling this).
    """
    mode = image.mode
    key = image.info.get("transparency")
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode.startswith("I;16") or mode in ("I", "F"):
        grey = _high_depth_to_uint8(image)
        if isinstance(key, int) and mode != "F":
            grey[np.asarray(image) == key] = 255
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode in _ALPHA_MODES or (mode == "P" and key is not None):
        # PIL applies a palette's transparent index or per-entry alphas; it converts premultiplied La only to LA
        rgba = (image.convert("LA") if mode == "La" else image).convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("1", "L", "RGB") and isinstance(key, (int, tuple)):
        rgb = np.array(image.convert("RGB"))
        values = np.asarray(image.convert("L") if mode == "1" else image)  # "1" decodes to 0/255 like its key
        keyed = np.all(values == np.asarray(key), axis=-1) if mode == "RGB" else values == key
        rgb[keyed] = _WHITE
        return Image.fromarray(rgb, mode="RGB")
    return image.convert("RGB")


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    profile = image.info.get("icc_profile")
    if profile:
        try:
            return ImageCms.profileToProfile(
                image, ImageCms.ImageCmsProfile(io.BytesIO(profile)), ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:  # a broken profile must not make the photo unusable
            logger.debug("ignoring an unusable ICC profile: %s", exc)
    return image.convert("RGB")


def _high_depth_to_uint8(image: Image.Image) -> np.ndarray:
    """8-bit greyscale of a 16/32-bit integer or float image by the rules of the module docstring."""
    if image.mode == "F":
        return np.round(_float_to_unit(np.asarray(image, dtype=np.float64)) * 255.0).astype(np.uint8)
    values = np.asarray(image).astype(np.int64)
    low, high = int(values.min()), int(values.max())
    if image.mode.startswith("I;16") or (low >= 0 and high <= 65535 and high > 255):
        # A 16-bit file (PNG/TIFF): map its full 0..65535 range to 0..255, as any viewer does.
        return ((values + 128) // 257).clip(0, 255).astype(np.uint8)
    if low >= 0 and high <= 255:
        return values.astype(np.uint8)
    if high == low:  # a constant outside 0..65535: clipped
        return np.full(values.shape, 0 if low < 0 else 255, dtype=np.uint8)
    return (((values - low) * 255 + (high - low) // 2) // (high - low)).astype(np.uint8)


def _float_to_unit(values: np.ndarray) -> np.ndarray:
    """Float pixels -> 0..1: kept within 0..1, else stretched over the finite range; +inf 1, -inf and NaN 0."""
    unit = np.where(values == np.inf, 1.0, 0.0)
    finite = np.isfinite(values)
    if not finite.any():
        return unit
    low, high = float(values[finite].min()), float(values[finite].max())
    if low >= 0.0 and high <= 1.0:
        unit[finite] = values[finite]
    elif high > low:
        unit[finite] = (values[finite] - low) / (high - low)
    else:
        unit[finite] = np.clip(low, 0.0, 1.0)
    return unit
