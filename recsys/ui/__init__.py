"""The studio's UI layer: the only part of ``recsys`` that imports Streamlit (DESIGN sections 2 and 11).

Pages import this package and their task's service, nothing else. Its modules, by what they do:

- :mod:`~recsys.ui.caches`: every ``st.cache_*``: settings, catalog, thumbnails, the studio context (with its encoder
  pool), the task services, the warm-up thread and the job registry;
- :mod:`~recsys.ui.routing`: the router that keeps deep links working;
- :mod:`~recsys.ui.building`: the built-in world on a fresh install, a catalog's embeddings on request;
- :mod:`~recsys.ui.warm_up`: the background warm-up at server start;
- :mod:`~recsys.ui.gates`: the job gates (set-up, training, evaluation) a page draws instead of its result;
- :mod:`~recsys.ui.widgets`: the photo upload-and-read widget, the item picker, the result card and grid;
- :mod:`~recsys.ui.pictures` and :mod:`~recsys.ui.report_view`: the For you page's pictures, the report's sections.
"""

from recsys.ui import report_view
from recsys.ui.building import build_builtin_catalog, catalog_is_built, compute_artifacts
from recsys.ui.caches import (THUMBNAIL_SIZE, artifact_summary, context, current_catalog, load_catalog, settings,
                              task_service, thumbnail)
from recsys.ui.gates import evaluation_gate, models_ready, report_gate, train_the_rest
from recsys.ui.pictures import heat_legend, item_picture, peak_picture
from recsys.ui.routing import page_exists, route, run_inside_router
from recsys.ui.warm_up import warm_up
from recsys.ui.widgets import (CardAction, filter_bar, first_page, grid, item_picker, pager, photo_query, report_claims,
                               result_card, title_matches)

__all__ = [
    "THUMBNAIL_SIZE", "CardAction", "artifact_summary", "build_builtin_catalog", "catalog_is_built", "compute_artifacts",
    "context", "current_catalog", "evaluation_gate", "filter_bar", "first_page", "grid", "heat_legend", "item_picker", "item_picture",
    "load_catalog", "models_ready", "page_exists", "pager", "peak_picture", "photo_query", "report_claims", "report_gate",
    "report_view", "result_card", "route", "run_inside_router", "settings", "task_service", "thumbnail",
    "title_matches", "train_the_rest", "warm_up",
]
