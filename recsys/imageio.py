"""Safe decoding of user uploads: any photo a user may hand the app becomes an upright RGB image or one clear error.

:func:`load_upload` refuses, with an :class:`ImageInputError` whose message is one sentence:

- empty uploads and files that are not images (a renamed ``.txt``, a PDF, ...);
- formats outside a short allow-list (e.g. EPS, which PIL would hand to Ghostscript);
- decompression bombs: the pixel count is read from the header and checked *before* any pixel is decoded;
- truncated or damaged files.

and normalises the rest: EXIF orientation applied, CMYK converted (through the embedded ICC profile when
there is one), transparency composited on white, 16-bit and 32-bit greyscale scaled to 8 bits by their
bit depth (not clipped), only the first frame of animations kept, and very large photos reduced.
"""

from __future__ import annotations

import io
import logging
import re

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

#: Largest accepted image in pixels (about an 8000 x 6000 photo); PIL's own warning level is ~89 Mpx.
DEFAULT_MAX_PIXELS = 50_000_000
#: Longest side kept after decoding; encoders work at 224 px, and the app shows thumbnails.
DEFAULT_MAX_SIDE = 2048
#: Formats a browser upload can reasonably be; everything else is refused unopened (PIL's JPEG opener also
#: reads the multi-picture JPEGs some phones write, which then report the format "MPO").
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

_WHITE = (255, 255, 255)


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
        For an empty, non-image, disallowed, oversized, truncated or damaged upload.
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
        raise ImageInputError(f"{label} has a damaged image header ({exc}).") from None

    width, height = image.size
    if width < 1 or height < 1:
        raise ImageInputError(f"{label} declares an empty {width} x {height} image.")
    if width * height > max_pixels:
        raise ImageInputError(
            f"{label} is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels), "
            f"above the limit of {max_pixels / 1e6:.0f} megapixels; upload a smaller image."
        )

    try:
        if max_side and image.format in ("JPEG", "MPO"):
            # JPEG can decode straight at 1/2, 1/4 or 1/8 scale: far less memory and time for huge photos.
            image.draft("RGB" if image.mode == "RGB" else None, (max_side, max_side))
        image.load()  # only the first frame of an animation
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageInputError(f"{label} is truncated or damaged and cannot be decoded ({exc}).") from None

    rgb = to_rgb(image)
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a decoded image of any PIL mode to RGB the way a viewer would show it (see module docstring)."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_high_depth_to_uint8(image), mode="L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
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
    """8-bit greyscale of a 16/32-bit integer or float image, scaled by its range instead of clipped at 255."""
    values = np.asarray(image)
    if image.mode == "F":
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        return np.clip(np.nan_to_num(scaled) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    values = values.astype(np.int64)
    low, high = int(values.min()), int(values.max())
    if image.mode.startswith("I;16") or (low >= 0 and high <= 65535 and high > 255):
        # A 16-bit file (PNG/TIFF): map its full 0..65535 range to 0..255, as any viewer does.
        return ((values + 128) // 257).clip(0, 255).astype(np.uint8)
    if low >= 0 and high <= 255:
        return values.astype(np.uint8)
    return ((values - low) * 255 // max(high - low, 1)).astype(np.uint8)
