"""The papers' own figures (``recsys.papers``): on our scale, sourced, keyed by real tasks and registry rows, and
tabulated with fixed columns."""

from __future__ import annotations

import pytest

from recsys.models.registry import list_models
from recsys.papers import PAPER_FIGURES, PAPER_TASKS, TABLE_COLUMNS, PaperFigure, paper_figures, paper_table


def test_there_are_figures_and_they_are_frozen():
    assert PAPER_FIGURES
    assert all(isinstance(figure, PaperFigure) for figure in PAPER_FIGURES)
    with pytest.raises(AttributeError):
        PAPER_FIGURES[0].value = 0.0


@pytest.mark.parametrize("figure", PAPER_FIGURES, ids=lambda f: f"{f.task}-{f.row}-{f.metric}-{f.value}")
def test_every_figure_is_on_our_scale(figure):
    low = -1.0 if figure.metric == "WKT" else 0.0
    assert low <= figure.value <= 1.0, f"{figure.value} is not a share (percent left unconverted?)"


@pytest.mark.parametrize("figure", PAPER_FIGURES, ids=lambda f: f"{f.task}-{f.row}-{f.metric}-{f.value}")
def test_every_figure_names_its_source_paper_and_data(figure):
    assert figure.source.strip()
    assert figure.paper.strip()
    assert figure.dataset.strip()
    assert figure.metric.strip()


@pytest.mark.parametrize("figure", PAPER_FIGURES, ids=lambda f: f"{f.task}-{f.row}-{f.metric}-{f.value}")
def test_every_figure_is_on_a_known_task_and_registry_row(figure):
    assert figure.task in PAPER_TASKS
    assert figure.row in list_models(figure.task)


def test_no_figure_is_listed_twice():
    keys = [(f.task, f.row, f.metric, f.paper, f.dataset) for f in PAPER_FIGURES]
    assert len(keys) == len(set(keys))


def test_paper_figures_selects_by_task():
    for task in PAPER_TASKS:
        figures = paper_figures(task)
        assert all(figure.task == task for figure in figures)
    assert sum(len(paper_figures(task)) for task in PAPER_TASKS) == len(PAPER_FIGURES)
    assert paper_figures("no-such-task") == []


def test_paper_table_has_the_stated_columns():
    assert TABLE_COLUMNS == ("paper", "dataset", "row", "metric", "value", "note")
    for task in PAPER_TASKS:
        table = paper_table(task)
        assert list(table.columns) == list(TABLE_COLUMNS)
        assert len(table) == len(paper_figures(task))
    compat = paper_table("compat")
    assert not compat.empty
    assert set(compat["row"]) <= set(list_models("compat"))


def test_paper_table_is_empty_with_columns_for_an_unknown_task():
    table = paper_table("no-such-task")
    assert table.empty
    assert list(table.columns) == list(TABLE_COLUMNS)
