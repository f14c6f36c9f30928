"""Background jobs: one per key, progress readable by every session, errors kept as a sentence."""

from __future__ import annotations

import threading

from recsys.jobs import JobRegistry


def test_two_starts_under_one_key_run_the_work_once():
    registry, release, calls = JobRegistry(), threading.Event(), []

    def work(progress):
        calls.append(1)
        progress(0.5, "half way")
        release.wait(5)
        return "result"

    first = registry.start(("cat", "setup"), "Setting up", work)
    second = registry.start(("cat", "setup"), "Setting up", work)
    assert first is second and first.running
    release.set()
    done = registry.wait(("cat", "setup"), timeout=5)
    assert calls == [1] and not done.running and done.result == "result"
    assert (done.fraction, done.message, done.error) == (1.0, "Done", None)


def test_a_failed_job_keeps_its_sentence_and_can_run_again():
    registry = JobRegistry()

    def fail(progress):
        raise ValueError("The catalog has no outfits.")

    job = registry.wait(registry.start(("cat", "train"), "Training", fail).key, timeout=5)
    assert job.error == "The catalog has no outfits." and not job.running
    again = registry.start(("cat", "train"), "Training", lambda progress: 1)
    assert again is not job
    assert registry.wait(again.key, timeout=5).error is None


def test_progress_is_clamped():
    registry = JobRegistry()
    job = registry.start(("c", "x"), "x", lambda progress: progress(3.0, "over"))
    registry.wait(job.key, timeout=5)
    assert job.fraction == 1.0
