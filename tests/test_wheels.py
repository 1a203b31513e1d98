"""`make wheels` builds both wheels, which install into a fresh virtual
environment and work there without the source tree."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest


@pytest.mark.slow
def test_wheels_install_into_a_fresh_venv(repo: Path, tmp_path: Path) -> None:
    build = subprocess.run(
        ["make", "wheels"], cwd=repo, capture_output=True, text=True, timeout=1200
    )
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = sorted((repo / "dist").glob("*.whl"))
    names = [w.name for w in wheels]
    assert any(n.startswith("bcai_native-") and "abi3" in n for n in names), names
    assert any(n.startswith("bcai-") for n in names), names

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    install = subprocess.run(
        [py, "-m", "pip", "install", "-q", *map(str, wheels)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert install.returncode == 0, install.stderr
    check = (
        "import bcai, bcai_native, bcai.kernels, numpy as np;"
        "from bcai import crypto;"
        "k = crypto.PrivateKey.generate();"
        "assert crypto.verify(k.public_key, b'm', k.sign(b'm'));"
        "a = np.ones((3, 4), np.int8);"
        "assert (bcai.kernels.matmul_i8(a, a.T) == 4).all();"
        "from importlib import resources;"
        "assert 'bcai_sgemm' in resources.files('bcai.vm').joinpath('cuda/gemm.cu').read_text();"
        "print(bcai.__file__)"
    )
    run = subprocess.run(
        [py, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert str(env_dir) in run.stdout  # imported from the venv, not the source tree
    cli = subprocess.run([env_dir / "bin" / "bcai", "version"], capture_output=True, text=True)
    assert cli.returncode == 0 and "bcai 0.1.0" in cli.stdout
