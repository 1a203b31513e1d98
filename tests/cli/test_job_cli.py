"""`bcai job`'s pieces that need no node: reading and writing matrices, the
Freivalds check of C, and argument errors (the whole flow against a devnet
is tests/node/test_devnet.py::test_cli_job_from_post_to_product)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bcai.cli._job import freivalds, load_matrix, save_matrix
from bcai.cli._wallet import CliInputError


def _code(fn, *args):  # type: ignore[no-untyped-def]
    with pytest.raises(CliInputError) as err:
        fn(*args)
    return err.value.code


def test_matrices_that_are_not_one_npy_array_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "text.npy").write_text("1 2 3\n")
    (tmp_path / "zip.npy").write_bytes(b"PK\x03\x04 not really a zip")
    np.savez(tmp_path / "two.npz", a=np.zeros(2), b=np.ones(2))
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    for name in ("missing.npy", "empty.npy", "text.npy", "zip.npy", "two.npz", "objects.npy"):
        assert _code(load_matrix, str(tmp_path / name), "A") == "cli-bad-file", name
    np.save(tmp_path / "fine.npy", np.arange(6, dtype=np.int16).reshape(2, 3))
    assert load_matrix(str(tmp_path / "fine.npy"), "A").shape == (2, 3)


def test_c_is_written_whole_under_its_own_name(tmp_path: Path) -> None:
    c = np.arange(12, dtype=np.int32).reshape(3, 4)
    path = save_matrix(str(tmp_path / "c.bin"), c)
    assert path == str(tmp_path / "c.bin") and np.array_equal(np.load(path), c)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.bin"]  # no temporary file left
    save_matrix(path, c * 2)  # replaced
    assert np.array_equal(np.load(path), c * 2)
    assert _code(save_matrix, str(tmp_path / "no" / "dir" / "c.npy"), c) == "cli-bad-file"


def test_freivalds_accepts_the_product_and_catches_one_wrong_entry() -> None:
    rng = np.random.default_rng(4)
    a = rng.integers(-63, 64, (256, 1024)).astype(np.int8)
    b = rng.integers(-63, 64, (1024, 128)).astype(np.int8)
    c = (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)
    assert freivalds(a, b, c)
    worst = np.full((128, 4096), 63, np.int8), np.full((4096, 128), -63, np.int8)
    assert freivalds(*worst, np.full((128, 128), -63 * 63 * 4096, np.int32))
    for i, j, delta in ((0, 0, 1), (255, 127, -1), (100, 3, 2**20)):
        wrong = c.copy()
        wrong[i, j] += delta
        assert not freivalds(a, b, wrong)
    assert not freivalds(a, b, c[:, :64])  # another shape
    assert not freivalds(a, b[:512], c)  # A and B that do not chain


def test_a_deadline_fewer_than_two_blocks_away_is_bad_usage(tmp_path: Path) -> None:
    args = ["job", "post", "--a", "x", "--b", "y", "--amount", "1", "--blocks", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "bcai", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "at least 2 blocks" in result.stderr
