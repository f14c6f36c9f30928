"""The studio under load: concurrent browser sessions on a real server, each looping over the pages' main actions
(upload a photo, build an outfit, send a chat message, apply a caption, open a heatmap), through the code ``make
bench`` runs (:func:`recsys.benchmarks.load.measure`) -- fewer sessions for a shorter time here (:data:`SESSIONS`,
:data:`DURATION_S`; the benchmark runs 8 for 60 s) so that the test fits the suite's time budget on 2 cores; then
the measuring itself, without a browser. No time is asserted: the figures are the benchmark's to print.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from recsys.benchmarks import _actions as actions
from recsys.benchmarks import _browser as driver
from recsys.benchmarks import load

#: 8 sessions for 60 s do not fit the suite's budget on 2 cores: each is a Chromium tab and a Streamlit session.
SESSIONS, DURATION_S = 2, 15.0

needs_chromium = pytest.mark.skipif(not driver.CHROMIUM.is_file(),
                                    reason=f"Debian Chromium is not installed at {driver.CHROMIUM}.")


@pytest.fixture(scope="module")
def figures(tiny_ready_dir, tmp_path_factory):
    """The load figures of the set-up tiny world."""
    return load.measure(tiny_ready_dir, sessions=SESSIONS, duration_s=DURATION_S,
                        work_dir=tmp_path_factory.mktemp("load"))


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_no_action_fails_under_load_and_every_kind_is_done(figures):
    assert figures["errors"] == 0, "\n".join(figures.get("error_messages", []))
    assert figures["server_tracebacks"] == 0
    # every kind is done at least once: alone first, then by the sessions
    missing = [kind for kind in actions.ACTIONS if f"solo/{kind}_s" not in figures]
    assert not missing, f"never done: {missing}; figures: {figures}"
    assert figures["actions_done"] >= 1


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_results_are_the_same_alone_and_under_load(figures):
    assert figures["determinism/compared"] >= 1
    assert figures["determinism/identical"] is True, "\n".join(figures.get("determinism/mismatches", []))

# ---------------------------------------------------------------------- the measuring, without a browser
def test_the_determinism_check_reports_a_result_that_differs_from_the_one_seen_alone():
    reference = {"search/is red": ("a", "b", "c")}
    records = [
        {"session": 0, "observed": {"search/is red": ("a", "b", "c"), "similar_upload/x.png": ("d", "e")}},
        {"session": 1, "observed": {"search/is red": ("a", "c", "b")}},
        {"session": 2, "observed": {"similar_upload/x.png": ("d", "e")}},
        {"session": 3, "error": "timed out"},
    ]
    found = load._determinism(reference, records)
    # two comparisons with the result seen alone, one with the first upload of x.png under load
    assert found["determinism/compared"] == 3
    assert found["determinism/identical"] is False
    assert len(found["determinism/mismatches"]) == 1
    assert found["determinism/mismatches"][0].startswith("session 1, search/is red: ['a', 'c', 'b']")


def test_the_determinism_check_with_nothing_compared_is_not_a_pass():
    assert load._determinism({"search/is red": ("a",)}, [])["determinism/identical"] is False


def test_server_memory_counts_the_child_processes_too():
    # the child makes 64 MiB resident (every byte written), then says so and waits for its stdin to close
    script = "import sys; x = bytearray(b'1') * (64 * 2**20); print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        own_mb = load._proc_tree_rss(os.getpid()) / 2**20 - load._proc_tree_rss(child.pid) / 2**20
        assert load._proc_tree_rss(child.pid) / 2**20 >= 64
        assert load.server_memory_mb(os.getpid()) >= own_mb + 64
    finally:
        child.stdin.close()
        child.wait(timeout=30)
