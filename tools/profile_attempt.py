"""Where one GPU mining attempt's time goes (n = 4096, b = 128)."""

import time

import cupy

from bcai import pouw
from bcai.crypto import merkle_root_packed
from bcai.mining import new_miner
from bcai.pouw import PouwParams
from bcai.pouw._noise import Noise, attempt_seed

p = PouwParams(tile=128, n=4096, k=4096, m=4096)
work = pouw.derived_work(b"\x03" * 32, p)
miner = new_miner("gpu")
seed = attempt_seed(b"x", 0)
for _ in range(2):
    miner.finish(miner.launch(work, seed, p))


def t(label, fn, reps=5):
    fn()
    cupy.cuda.Device().synchronize()
    b = time.perf_counter()
    for _ in range(reps):
        out = fn()
    cupy.cuda.Device().synchronize()
    print(f"{label:30s} {(time.perf_counter() - b) / reps * 1e3:8.3f} ms", flush=True)
    return out


noise = t("Noise.derive", lambda: Noise.derive(seed, 4096, 4096, 4096, 128))
t("launch (no wait)", lambda: miner.launch(work, seed, p))
leaves = t("launch+finish", lambda: miner.finish(miner.launch(work, seed, p)))[0]
t("merkle_root_packed", lambda: merkle_root_packed(leaves, 4))
f16 = cupy.float16
t("E = E_L E_R f16", lambda: cupy.asarray(noise.e_l, f16) @ cupy.asarray(noise.e_r, f16))
a, bt = miner._operands(work)
e = cupy.asarray(noise.e_l, f16) @ cupy.asarray(noise.e_r, f16)
t("a + e -> int8", lambda: (a + e.astype(cupy.float32)).astype(cupy.int8))
a2 = (a + e.astype(cupy.float32)).astype(cupy.int8)
t("leaves_device", lambda: miner.leaves_device(a2, a2, 128, 5 | 7 << 32))
