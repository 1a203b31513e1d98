"""The data dir: a foreign directory and a locked one are refused with a
clear error before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bcai.node.datadir import DataDir, DataDirError


def test_foreign_dir_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(DataDirError) as info:
        DataDir(tmp_path).prepare()
    assert info.value.code == "datadir-foreign"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_operator_files_are_allowed_before_first_run(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("")
    DataDir(tmp_path).prepare()
    assert (tmp_path / ".bcai-datadir").exists()
    DataDir(tmp_path).prepare()  # a second time is fine


def test_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    d = DataDir(tmp_path)
    d.prepare()
    d.lock()
    try:
        code = (
            "import sys; from pathlib import Path\n"
            "from bcai.node.datadir import DataDir, DataDirError\n"
            "try:\n    DataDir(Path(sys.argv[1])).lock()\n"
            "except DataDirError as e:\n    print(e.code, e.message); sys.exit(3)\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
        )
        assert other.returncode == 3, other.stderr
        assert other.stdout.startswith("datadir-locked")
        assert "pid" in other.stdout
    finally:
        d.unlock()
    again = DataDir(tmp_path)
    again.lock()
    again.unlock()


def test_keys_persist_with_private_mode(tmp_path: Path) -> None:
    d = DataDir(tmp_path)
    d.prepare()
    first = d.key("node")
    assert d.key("node").public_key == first.public_key
    assert (tmp_path / "keys" / "node.key").stat().st_mode & 0o077 == 0
    (tmp_path / "keys" / "bad.key").write_text("zz")
    with pytest.raises(DataDirError) as info:
        d.key("bad")
    assert info.value.code == "datadir-bad-key"
