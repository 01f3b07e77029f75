"""The same jobs write the same bytes: the PNGs of fixed CLI and server jobs (toy and tiny-random: one object, two
objects, a new background, a moved object, a brought layer) against the recorded SHA-256 (tests/same_bytes_jobs.py
says when they were recorded, and how to record them again when a change is meant to change pictures)."""

import json
from pathlib import Path

import pytest

from tests.same_bytes_jobs import all_cases

RECORDED = Path(__file__).resolve().parent / "data" / "same-bytes-sha256.json"


@pytest.mark.slow
def test_fixed_jobs_write_the_recorded_bytes(tmp_path):
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))
    today = all_cases(tmp_path)
    assert sorted(today) == sorted(recorded)
    changed = [f"{case}/{job}/{name}" for case in recorded for job in recorded[case]
               for name in sorted(set(recorded[case][job]) | set(today[case].get(job, {})))
               if recorded[case][job].get(name) != today[case].get(job, {}).get(name)]
    assert not changed, f"{len(changed)} PNGs changed: {changed[:12]}"
