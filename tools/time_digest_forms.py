"""What the digest costs the hand-written transcript kernel: the kernel
compiled with each DIGEST_FORM of native/cuda/transcript_sm90.cu (0 the
digest, Σ (y_2i XOR λ)·y_2i+1; 1 v2's Σ (y XOR λ)²; 2 the pairs each
XORed with λ; 3 the pairs without λ) and the bare product, at n = k = m =
N: CUDA events (median of 200, three rounds) and two seconds sustained with
the SM clock and board power (NVML). Form 0's leaves are checked against
Triton's; the others' leaves are not the transcript's by design. Usage:
time_digest_forms.py [N] [FORM,FORM,…]"""

import json
import sys
from typing import Any

import cupy
import numpy as np
import torch
from _cuda_timing import compare

from bcai.mining import _sm90, _triton

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
FORMS = [int(f) for f in sys.argv[2].split(",")] if len(sys.argv) > 2 else list(range(4))
compile_source = _sm90._compile
a = torch.randint(-128, 128, (N, N), dtype=torch.int8, device="cuda")
bt = torch.randint(-128, 128, (N, N), dtype=torch.int8, device="cuda")
keys = torch.tensor([0x12345678, 0xA5A5A5A5], dtype=torch.int64).to(torch.uint32).cuda()
want = _triton.leaves(a, bt, 128, keys)
got = torch.empty_like(want)
c = torch.empty((N, N), dtype=torch.int32, device="cuda")
ck, cl, cc = cupy.from_dlpack(keys), cupy.from_dlpack(got), cupy.from_dlpack(c)
out: dict[str, Any] = {"device": torch.cuda.get_device_name(), "n": N}


def form(number: int) -> _sm90.Operands:
    _sm90._compile = lambda source, consumers: compile_source(  # type: ignore[assignment]
        f"#define DIGEST_FORM {number}\n{source}", consumers
    )
    _sm90._kernels.cache_clear()
    return _sm90.Operands(cupy.from_dlpack(a), cupy.from_dlpack(bt))


variants: dict[str, Any] = {}
for number in FORMS:
    ops = form(number)
    ops.leaves(ck, cl)
    if number == 0 and not torch.equal(got, want):
        sys.exit("form 0 is not the transcript")
    kernels = _sm90._functions()  # this form's, held by the closure below
    variants[f"form {number}"] = lambda ops=ops, kernels=kernels: _launch(ops, kernels)
variants["bare"] = lambda ops=ops: ops.product(cc)


def _launch(ops: _sm90.Operands, kernels: Any) -> None:
    n, k, m = ops.shape
    threads, shared = _sm90.layout(_sm90.TRANSCRIPT_CONSUMERS)
    kernels[0](
        (_sm90._grid(n, m),),
        (threads,),
        (*ops.maps, cl, ck, np.int32(n), np.int32(k), np.int32(m)),
        shared_mem=shared,
    )


compare(variants, out)
print(json.dumps(out))
