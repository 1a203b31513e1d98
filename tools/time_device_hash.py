"""The device BLAKE3 kernels (native/cuda/blake3.cu): the Merkle root of a
transcript's 4-byte leaves at n = 4096, 8192 and 16384 (b = 128) with spans
of 512 and of 2048 hashes a block (-DSPAN), its last pass fused into the one
before and a launch a pass, on every SM and on GRID blocks (the pipeline's
spare SMs); and the noise factors' XOF against an earlier source of the
kernels (e.g. `git show REV:native/cuda/blake3.cu > old.cu`, its kernels'
signatures unchanged). Each result checked equal to the other's and the
Merkle root to the host's, then CUDA events (median of 50).
Usage: time_device_hash.py OLD.cu [GRID]"""

import json
import sys
from importlib import resources
from typing import Any

import cupy
import numpy as np
from _cuda_timing import median_ms

from bcai.crypto import merkle_root_packed
from bcai.mining import _device_hash
from bcai.pouw._noise import attempt_seed

with open(sys.argv[1]) as source:
    old = cupy.RawModule(code=source.read(), options=("-std=c++14",))
source = resources.files("bcai.mining").joinpath("cuda/blake3.cu").read_text()
spans = {
    span: cupy.RawModule(code=source, options=("-std=c++14", f"-DSPAN={span}"))
    for span in (512, 2048)
}
GRID = int(sys.argv[2]) if len(sys.argv) > 2 else 18
modules = {"old": old, "new": _device_hash._module()}
out: dict[str, Any] = {"device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()}


def using(module: Any) -> None:
    _device_hash._module = lambda: module  # type: ignore[assignment]


def merkle(n: int) -> None:
    count = (n // 128) ** 3
    data = cupy.asarray(np.random.default_rng(n).integers(0, 2**32, count, np.uint32))
    host = merkle_root_packed(cupy.asnumpy(data).tobytes(), 4)
    for span, module in spans.items():
        using(module)
        _device_hash.SPAN = span
        scratch = _device_hash.merkle_scratch(count)
        for fuse, grid in ((True, None), (False, None), (True, GRID)):
            root = _device_hash.merkle_root(data, 4, scratch, fuse, grid)
            assert cupy.asnumpy(root).tobytes() == host, (span, fuse, grid)
            ms = median_ms(
                lambda fuse=fuse, grid=grid, scratch=scratch: _device_hash.merkle_root(
                    data, 4, scratch, fuse, grid
                )
            )
            form = ("fused" if fuse else "a launch a pass") + (f", {grid} blocks" if grid else "")
            out[f"merkle n={n} ({count} leaves) span {span} {form}"] = round(ms, 4)
    _device_hash.SPAN = 2048


def noise(n: int) -> None:
    seed = attempt_seed(b"\x07" * 32, 0)
    factors = {}
    for name, module in modules.items():
        using(module)
        factors[name] = [cupy.asnumpy(f) for f in _device_hash.noise_factors(seed, n, n, n, 128)]
    assert all(np.array_equal(a, b) for a, b in zip(factors["old"], factors["new"], strict=True))
    keys, shapes, blocks = _device_hash.noise_spec(seed, n, n, n, 128)
    words = cupy.asarray(np.frombuffer(keys, "<u4"))
    spec = cupy.asarray(np.array(shapes, np.int32))
    buffers = _device_hash.factor_buffers(n, n, n, 128)
    for name, module in modules.items():
        using(module)
        ms = median_ms(lambda: _device_hash.launch_noise(words, spec, buffers, blocks))
        out[f"noise XOF n={n} {name}"] = round(ms, 4)


for n in (4096, 8192, 16384):
    merkle(n)
    noise(n)
    print(json.dumps(out), flush=True)
