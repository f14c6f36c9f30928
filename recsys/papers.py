"""Figures the original papers report for the methods the studio implements, for the Model report page to show
beside our own figures, marked as "reported by the paper, on other data".

They are not comparable with our figures in any strict sense: each paper used its own data, splits, features and
candidate sets. They only say what order of magnitude the method reached where it was introduced.

Every figure here was read in a source named in :attr:`PaperFigure.source`; a figure that could not be checked
against a source is left out rather than recalled from memory. Values are on our scale (shares in 0-1, not
percent). Where the paper's metric is not the one our report computes, :attr:`PaperFigure.metric` carries the
paper's own name and :attr:`PaperFigure.note` says how it differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: The tasks a figure may belong to (the studio's task keys).
PAPER_TASKS = ("compat", "personal", "composed", "dialogue")
#: Columns of :func:`paper_table`, in order.
TABLE_COLUMNS = ("paper", "dataset", "row", "metric", "value", "note")


@dataclass(frozen=True)
class PaperFigure:
    """One figure a paper reports.

    Attributes
    ----------
    task : str
        ``"compat"``, ``"personal"``, ``"composed"`` or ``"dialogue"``.
    row : str
        The registry row (model name) of that task the figure corresponds to, e.g. ``"type-aware"``.
    metric : str
        Our metric name where the paper's metric means the same thing; otherwise the paper's own name.
    value : float
        On our scale: shares in 0-1, not percent.
    paper : str
        Short citation, e.g. ``"Vasileva et al., ECCV 2018"``.
    dataset : str
        The paper's data, e.g. ``"Polyvore Outfits (non-disjoint)"``.
    source : str
        Where the number was read (URL or ``repo/path``) and which table or passage it restates.
    note : str
        How the figure differs from ours, where it does.
    """

    task: str
    row: str
    metric: str
    value: float
    paper: str
    dataset: str
    source: str
    note: str = ""


_VASILEVA = "Vasileva et al., ECCV 2018"
_VASILEVA_SOURCE = ("github.com/mvasil/fashion-compatibility README.md (authors' repository), 'Using a pre-trained "
                    "model': '0.86 AUC/55.3 accuracy for our best model reported in our paper'")
_VASILEVA_NOTE = ("Best model of the paper; the README compares it with its pre-trained model for the non-disjoint "
                  "split, so the split is read from that context.")
_VBPR = "He & McAuley, AAAI 2016"
_VBPR_SOURCE = ("github.com/aaossa/VBPR-PyTorch README.md, table 'Dataset | Setting | Paper | This repo', "
                "'Paper' column (restating the VBPR paper's AUC table)")
_CLIP4CIR_NOTE = ("Papers with Code's Fashion IQ benchmark metric, the mean of Recall@10 and Recall@50; not R@10 "
                  "or R@50 alone, so it sits between our two columns.")

PAPER_FIGURES: tuple[PaperFigure, ...] = (
    PaperFigure(
        task="compat", row="type-aware", metric="FITB", value=0.553, paper=_VASILEVA,
        dataset="Polyvore Outfits (non-disjoint)", source=_VASILEVA_SOURCE,
        note="Fill-in-the-blank accuracy (55.3%). " + _VASILEVA_NOTE,
    ),
    PaperFigure(
        task="compat", row="type-aware", metric="AUC", value=0.86, paper=_VASILEVA,
        dataset="Polyvore Outfits (non-disjoint)", source=_VASILEVA_SOURCE,
        note="Outfit compatibility AUC. " + _VASILEVA_NOTE,
    ),
    PaperFigure(
        task="personal", row="vbpr", metric="AUC", value=0.7834, paper=_VBPR,
        dataset="Tradesy.com (all items)", source=_VBPR_SOURCE,
        note="AUC over all test items on Tradesy.com, one of the paper's three datasets (with Amazon Women, Men).",
    ),
    PaperFigure(
        task="personal", row="vbpr", metric="AUC (cold start)", value=0.7594, paper=_VBPR,
        dataset="Tradesy.com (cold-start items)", source=_VBPR_SOURCE,
        note="AUC restricted to cold-start items (few training interactions), not our all-items AUC.",
    ),
    PaperFigure(
        task="composed", row="combiner", metric="(R@10+R@50)/2", value=0.5536,
        paper="Baldrati et al., ACM TOMM 2023 (CLIP4Cir v3)", dataset="FashionIQ",
        source=("paperswithcode.com/paper/composed-image-retrieval-using-contrastive, 'Results from the Paper': "
                "Fashion IQ, CLIP4Cir (v3), (Recall@10+Recall@50)/2 = 55.36"),
        note=_CLIP4CIR_NOTE + " Fine-tuned CLIP encoders plus Combiner.",
    ),
    PaperFigure(
        task="composed", row="combiner", metric="(R@10+R@50)/2", value=0.5003,
        paper="Baldrati et al., CVPR-W 2022 (CLIP4Cir v2)", dataset="FashionIQ",
        source=("paperswithcode.com/paper/conditioned-and-composed-image-retrieval, 'Results from the Paper': "
                "Fashion IQ, CLIP4Cir (v2), (Recall@10+Recall@50)/2 = 50.03"),
        note=_CLIP4CIR_NOTE + " Partially fine-tuned CLIP (text encoder) plus Combiner.",
    ),
)


def paper_figures(task: str) -> list[PaperFigure]:
    """The figures of ``task``, in :data:`PAPER_FIGURES` order; empty for a task without figures or unknown."""
    return [figure for figure in PAPER_FIGURES if figure.task == task]


def paper_table(task: str) -> pd.DataFrame:
    """The figures of ``task`` as a table, one row per figure, columns :data:`TABLE_COLUMNS` (paper, dataset, row,
    metric, value, note); an empty table with those columns for a task without figures or unknown."""
    rows = [{column: getattr(figure, column) for column in TABLE_COLUMNS} for figure in paper_figures(task)]
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
