"""The hand-written .pyi stubs of the compiled modules match what they export
(mypy's stubtest), so the docstrings and types people read are the real ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).resolve().parents[2] / "tools" / "stubtest_allowlist.txt"


@pytest.mark.slow
def test_stubs_match_compiled_modules() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "bcai_native",
            "bcai._kernels",
            "--allowlist",
            str(ALLOWLIST),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_stubtest_notices_a_missing_function(tmp_path: Path, repo: Path) -> None:
    """The check itself can fail: a stub lacking `sha256` is reported."""
    stub = (repo / "native" / "rust" / "bcai_native.pyi").read_text()
    start = stub.index("def sha256(")
    end = stub.index("@final", start)
    (tmp_path / "bcai_native.pyi").write_text(stub[:start] + stub[end:])
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "bcai_native", "--allowlist", str(ALLOWLIST)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MYPYPATH": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "bcai_native.sha256 is not present in stub" in result.stdout
