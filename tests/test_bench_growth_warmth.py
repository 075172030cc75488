"""The benchmark of spaced-out answers: which job it runs and how it reports."""

from __future__ import annotations

import re

from benchmarks import growth_warmth


def test_it_runs_the_smallest_step_of_the_growth_series() -> None:
    step = growth_warmth.smallest_step()

    assert (step.signal_count, step.span_s, step.window, step.copies) == (
        100,
        3600,
        "1s",
        1,
    )


def test_the_report_gives_each_median_and_their_ratio() -> None:
    costs = {"slow": [1.5, 0.9, 1.2], "fast": [0.8, 0.6, 0.7]}

    lines = growth_warmth.report(costs).splitlines()

    assert lines[2:4] == ["| slow | 1.200 | 3 |", "| fast | 0.700 | 3 |"]
    assert re.fullmatch(
        r"Spaced-out answers cost 1\.71 times as much per point "
        r"\(load average \d+\.\d\d\)\.",
        lines[-1],
    )
