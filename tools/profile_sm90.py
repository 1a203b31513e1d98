"""One launch each of the hand-written kernel's transcript and bare product
at n = k = m = 4096, after a warm-up, for Nsight Compute:
`ncu --kernel-name regex:bcai_ --launch-skip 2 python3 profile_sm90.py`."""

import cupy
import numpy as np

from bcai.mining import _sm90

N = 4096
rng = np.random.default_rng(0)
a = cupy.asarray(rng.integers(-128, 128, (N, N), dtype=np.int8))
bt = cupy.asarray(rng.integers(-128, 128, (N, N), dtype=np.int8))
operands = _sm90.Operands(a, bt)
keys = cupy.asarray(np.array([5, 0xA5A5A5A5], np.uint32))
leaves = cupy.empty((N // 128) ** 3, cupy.uint32)
c = cupy.empty((N, N), cupy.int32)
for _ in range(2):
    operands.leaves(keys, leaves)
    operands.product(c)
cupy.cuda.Device().synchronize()
