"""Image preprocessing pieces that torchvision lacks (kept picklable so DataLoader workers can run them)."""

from __future__ import annotations

from PIL import Image


class PadToSquare:
    """Pad a PIL image to a square with ``fill`` so that a following resize keeps the whole garment.

    Product photos are often tall or wide; a centre crop would cut sleeves or hems off, and a plain resize
    would distort the silhouette. The padded square is also what feature-map cells refer to, so a heatmap
    can be drawn back onto the original image by undoing the same padding (see :func:`square_box`).
    """

    def __init__(self, fill: tuple[int, int, int] = (255, 255, 255)):
        self.fill = fill

    def __call__(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        if width == height:
            return image
        left, top, side = square_box(width, height)
        canvas = Image.new(image.mode, (side, side), self.fill if image.mode == "RGB" else 255)
        canvas.paste(image, (left, top))
        return canvas

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fill={self.fill})"


def square_box(width: int, height: int) -> tuple[int, int, int]:
    """``(left, top, side)``: where a ``width`` x ``height`` image sits inside its padded square."""
    side = max(width, height)
    return (side - width) // 2, (side - height) // 2, side
