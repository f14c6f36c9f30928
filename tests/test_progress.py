"""Progress output: a live tqdm bar on a terminal, a few whole lines in a log (no carriage-return fragments)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time

from recsys.config import PROJECT_ROOT
from recsys.progress import LOG_INTERVAL_S, LineWriter, is_terminal, progress_bar


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_writer_prints_the_first_state_then_one_line_per_interval_then_the_last():
    clock, out = FakeClock(), io.StringIO()
    writer = LineWriter(out, interval_s=5.0, clock=clock)
    for step in range(100):  # 100 redraws over 19.8 simulated seconds, the way tqdm writes them
        clock.now = step / 5
        writer.write(f"\rbuilding: {step:3d}%  ")
    writer.write("\rbuilding: 100%  \n")  # tqdm closing a bar that stays: the final state, a newline
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and out.getvalue().endswith("\n")
    # at 0 s, 5 s, 10 s and 15 s, and the final state
    assert lines == ["building:   0%", "building:  25%", "building:  50%", "building:  75%", "building: 100%"]


def test_the_writer_drops_cursor_moves_blank_redraws_and_repeats():
    clock, out = FakeClock(), io.StringIO()
    writer = LineWriter(out, interval_s=5.0, clock=clock)
    writer.write("\rimages: 10%")
    clock.now = 6.0
    writer.write("\n\x1b[A\rimages: 10%")  # a stacked bar's cursor moves, then the same state again
    writer.write("\r      \r")  # a transient bar clearing itself
    writer.write("\n")
    assert out.getvalue() == "images: 10%\n"


def test_a_bar_written_to_a_log_is_a_few_whole_lines():
    out = io.StringIO()
    started = time.monotonic()
    bar = progress_bar(total=100, desc="building tiny", unit="%", file=out, interval_s=0.05,
                       bar_format="{l_bar}{bar}| {postfix}")
    for step in range(101):  # the scripts' callback style: set the count, the message, and force a redraw
        bar.n = step
        bar.set_postfix_str(f"step {step}")
        bar.refresh()
        time.sleep(0.002)
    bar.close()
    for _ in progress_bar(range(2000), desc="title", unit="shard", file=out, interval_s=0.05):
        pass
    elapsed = time.monotonic() - started
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text and text.isascii()
    lines = text.splitlines()
    assert all(line.strip() for line in lines)
    assert len(lines) <= 2 * 2 + elapsed / 0.05 + 1  # first and last of each bar, one per interval between
    assert lines[-1].startswith("title: 100%") and any(line.startswith("building tiny: 100%") for line in lines)


def test_a_bar_on_a_terminal_stays_a_live_tqdm_bar():
    out = Terminal()
    with progress_bar(total=3, desc="images", file=out) as bar:
        bar.update(3)
    assert "\r" in out.getvalue()  # redrawn in place, as tqdm does
    assert is_terminal(out) and not is_terminal(io.StringIO()) and not is_terminal(None)


def test_build_demo_writes_whole_lines_when_its_output_is_not_a_terminal(tmp_path):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "build_demo.py"), "--preset", "tiny", "--out",
         str(tmp_path / "tiny"), "--workers", "1"],
        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "\r" not in output
    progress_lines = [line for line in result.stderr.splitlines() if line.startswith("building tiny:")]
    assert progress_lines and re.match(r"building tiny: 100%", progress_lines[-1])
    assert len(progress_lines) <= 2 + elapsed / LOG_INTERVAL_S


def test_progress_bars_are_made_in_one_place():
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for folder in ("recsys", "scripts")
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        if path.name != "progress.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.match(r"\s*(from tqdm\b|import tqdm\b)", line)
    ]
    assert not offenders, f"use recsys.progress.progress_bar instead of tqdm: {offenders}"
