"""The `bcai` command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import blake3 as blake3_pkg
import pytest

from bcai.cli import _demo, main


def bcai(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bcai", *args], capture_output=True, text=True, timeout=300
    )


def test_demo_json_passes_every_step() -> None:
    result = bcai("demo", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [s["ok"] for s in report["steps"]] == [True] * 6
    assert report["steps"][5]["height"] == 5
    merkle = report["steps"][1]
    assert merkle["leaves"] == 100_000 and len(merkle["root"]) == 64


def test_demo_human_output() -> None:
    result = bcai("demo")
    assert result.returncode == 0
    assert "all checks passed" in result.stdout


def test_hash_matches_blake3(tmp_path: Path) -> None:
    f = tmp_path / "data.bin"
    f.write_bytes(bytes(range(256)) * 40_000)
    result = bcai("hash", "--json", str(f))
    assert result.returncode == 0
    assert json.loads(result.stdout)["blake3"] == blake3_pkg.blake3(f.read_bytes()).hexdigest()
    human = bcai("hash", str(f))
    assert human.stdout.split()[0] == blake3_pkg.blake3(f.read_bytes()).hexdigest()


def test_missing_file_and_bad_usage_exit_2(tmp_path: Path) -> None:
    assert bcai("hash", str(tmp_path / "nope")).returncode == 2
    assert "no such file" in bcai("hash", str(tmp_path / "nope")).stderr
    assert bcai("frobnicate").returncode == 2


def test_version() -> None:
    result = bcai("--json", "version")
    assert json.loads(result.stdout)["bcai"] == "0.1.0"


def test_main_in_process(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    f = tmp_path / "x"
    f.write_bytes(b"abc")
    assert main(["hash", str(f)]) == 0
    assert capsys.readouterr().out.startswith(blake3_pkg.blake3(b"abc").hexdigest())
    assert main(["version"]) == 0
    assert "bcai 0.1.0" in capsys.readouterr().out


def test_demo_reports_a_failing_step() -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("boom")

    step = _demo._step("broken", broken)
    assert step["ok"] is False and "RuntimeError: boom" in step["error"]
