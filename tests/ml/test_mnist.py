"""MNIST through the VM: the dataset's checksum guard, and the CI-sized run
of the CNN (10,000 training images, 3 epochs, >= 95% on the 10,000 test
images). `make mnist` runs the full one (60,000 images, >= 98.5%)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bcai.ml import mnist
from bcai.ml.datasets import DatasetError, load_mnist, mnist_path


def test_the_dataset_is_the_known_file_and_a_changed_one_is_refused(tmp_path: Path) -> None:
    data = load_mnist()
    assert (len(data.train), len(data.test)) == (60_000, 10_000)
    assert data.train.x.shape == (60_000, 1, 28, 28) and data.train.x.max() <= 1.0
    assert set(data.test.y.tolist()) == set(range(10))
    fake = tmp_path / "mnist.pkl.gz"
    fake.write_bytes(gzip.compress(b"cos\nsystem\n(S'echo pwned'\ntR."))  # a hostile pickle
    with pytest.raises(DatasetError) as err:
        load_mnist(fake)
    assert err.value.code == "dataset-checksum"
    assert mnist_path().name == "mnist.pkl.gz"


@pytest.mark.slow
def test_the_cnn_learns_mnist_from_a_subset() -> None:
    curve = mnist.train(epochs=3, train_size=10_000, seed=0)
    assert curve.accuracy[-1] >= 0.95, curve.accuracy
    assert curve.losses[-1] < curve.losses[0] / 2
