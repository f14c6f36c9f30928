"""scripts/bench.py: the figures it writes, and how it finds and calls benchmark functions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from recsys.config import PROJECT_ROOT
from tests._scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench")


def test_benchmark_functions_get_the_arguments_they_name(bench):
    def bench_takes_two(quick, catalog_dir=None):
        return {"quick": quick, "catalog_dir": catalog_dir}

    def bench_takes_anything(**kwargs):
        return kwargs

    def bench_needs_more(quick, gpu_count):
        return {}

    offered = {"quick": True, "catalog_dir": "c", "seed": 3}
    assert bench.call_with_accepted(bench_takes_two, offered) == {"quick": True, "catalog_dir": "c"}
    assert bench.call_with_accepted(bench_takes_anything, offered) == offered
    with pytest.raises(TypeError, match="gpu_count"):
        bench.call_with_accepted(bench_needs_more, offered)


def test_quick_run_writes_figures_and_keeps_going_past_a_failing_benchmark(bench, monkeypatch, tmp_path, capsys):
    def bench_fine(catalog_dir, quick):
        return {"items_seen": len(list((catalog_dir / "images").rglob("*.png"))), "quick": quick}

    def bench_broken():
        raise RuntimeError("out of luck")

    fakes = [("fine", bench_fine), ("broken", bench_broken)]
    monkeypatch.setattr(bench, "discover_benchmarks", lambda: fakes)
    out = tmp_path / "bench.json"

    assert bench.main(["--quick", "--json", str(out)]) == 1  # one benchmark failed

    report = json.loads(out.read_text())
    built = report["benchmarks"]["build_demo_world.tiny"]
    assert built["items"] > 0 and built["seconds"] > 0
    assert "build_demo_world.demo" not in report["benchmarks"]
    assert report["benchmarks"]["fine"] == {"items_seen": built["items"], "quick": True}
    assert "out of luck" in report["benchmarks"]["broken"]["error"]
    assert "items_per_s" in capsys.readouterr().out


def test_every_benchmark_module_offers_a_run_function(bench):
    names = [name for name, _ in bench.discover_benchmarks()]
    assert names == sorted(names)
    assert all(callable(run) for _, run in bench.discover_benchmarks())


def test_the_command_line_documents_its_flags():
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "bench.py"), "--help"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0
    assert "--quick" in result.stdout and "--json" in result.stdout


def test_only_runs_the_named_modules_and_builds_no_world_they_do_not_read(bench, monkeypatch, tmp_path):
    fakes = [("plain", lambda quick: {"ran": True}), ("other", lambda quick: {"ran": True})]
    monkeypatch.setattr(bench, "discover_benchmarks", lambda: fakes)
    out = tmp_path / "bench.json"

    assert bench.main(["--quick", "--only", "plain", "--json", str(out)]) == 0

    assert json.loads(out.read_text())["benchmarks"] == {"plain": {"ran": True}}
    with pytest.raises(SystemExit):
        bench.main(["--only", "nope"])
