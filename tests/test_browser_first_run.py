"""End to end, the first run: on a freshly built and set-up world every page, opened by its address, shows its main
result -- nothing to type, nothing "not trained", no "Page not found", no exception box.

The world is built and set up once for the module by ``scripts/setup.py --builtin --preset tiny`` (what ``make run``
does, in a subprocess), then a fresh Streamlit server is started on it and every page is opened in a fresh browser
session, Browse first as the server's first session. The waits (each page's main result, the script run being over)
are those of the first-run benchmark: :mod:`recsys.benchmarks._browser`.
"""

from __future__ import annotations

import pytest

from recsys.benchmarks import _browser as driver
from recsys.benchmarks import first_run
from recsys.config import PROJECT_ROOT

SCREENSHOTS = PROJECT_ROOT / "test-output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not driver.CHROMIUM.is_file(), reason=f"Debian Chromium is not installed at {driver.CHROMIUM}."),
]


@pytest.fixture(scope="module")
def set_up_world(tmp_path_factory):
    """A tiny built-in world built from nothing and set up by ``scripts/setup.py`` (models, quick report)."""
    folder = tmp_path_factory.mktemp("first_run") / "tiny"
    summary = first_run.run_setup(folder, preset="tiny", log_path=folder.parent / "setup.log")
    assert not summary.get("skipped"), f"the set-up skipped steps on the built-in world: {summary['skipped']}"
    return folder


def test_every_page_shows_its_main_result_on_a_freshly_set_up_world(set_up_world, tmp_path):
    failures = []
    with driver.serve(set_up_world, tmp_path / "streamlit.log") as url, driver.chromium() as browser:
        for path, name in driver.PAGES.items():  # "" (Browse) first: the server's first session
            try:
                visit = driver.visit(browser, url, path, screenshot=SCREENSHOTS / f"first_run_{name}.png")
            except driver.DriverError as exc:
                failures.append(str(exc))
                continue
            failures.extend(f"/{path}: {problem}" for problem in visit.problems)
    assert not failures, "\n".join(failures)
