"""Pictures the For you page draws from an item's image: plain, under a heatmap of region scores, with the peak
region outlined, and the heatmap's legend (:mod:`recsys.viz` does the drawing)."""

from __future__ import annotations

from recsys import viz
from recsys.catalog import Catalog


def item_picture(catalog: Catalog, item_id: str, weights=None, opacity: float = 0.45, size: int = 224):
    """The item's image as a ``size``-pixel square, under the heatmap of ``weights`` (a ``(rows, cols)`` grid of region
    scores, any scale) at ``opacity`` when given; a PIL image."""
    image = catalog.load_image(item_id)
    if weights is None:
        return viz.square_thumbnail(image, size)
    return viz.heatmap_overlay(image, weights, opacity=opacity, size=size)


def peak_picture(catalog: Catalog, item_id: str, weights, opacity: float = 0.45, size: int = 448):
    """:func:`item_picture` under its heatmap with the highest-scoring region outlined."""
    return viz.mark_peak(item_picture(catalog, item_id, weights, opacity, size), weights)


def heat_legend(width: int = 448, height: int = 12):
    """The heatmap's colour scale, low to high, as a ``width`` x ``height`` PIL image."""
    return viz.heatmap_legend(width, height)
