"""Shared fixtures. Published test vectors live in ../shared/vectors beside
the repository (or wherever $BCAI_VECTORS points); they are read, never copied."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def vectors_dir() -> Path:
    override = os.environ.get("BCAI_VECTORS")
    path = Path(override) if override else REPO.parent / "shared" / "vectors"
    if not path.is_dir():
        raise RuntimeError(f"test vectors not found at {path}; set BCAI_VECTORS")
    return path


def load_vectors(name: str) -> Any:
    return json.loads((vectors_dir() / name).read_text())


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
