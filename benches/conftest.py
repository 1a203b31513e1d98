"""Benchmarks run only with `make bench` (pytest-benchmark). Each group times
bcai and its baseline in the same run; `tools/bench_report.py` prints the
medians and ratios that go into docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def role(benchmark: Any) -> Any:
    """Tags a benchmark as `bcai` or `baseline` and with the target ratio."""

    def tag(name: str, target: float | None = None) -> None:
        benchmark.extra_info["role"] = name
        if target is not None:
            benchmark.extra_info["target"] = target

    return tag
