"""Device time (CUDA events, medians of 50) of forms of the `noisy` step
A' = A + E_L·E_R (int8, n = k = 4096, r = 128) against a plain 16 MiB
device copy (the memory floor of reading A and writing A'); base_first: A
loaded after the product (0), before it (1), or as its accumulator (2).
Each form is checked against torch first."""

import json
from typing import Any

import torch
import triton
import triton.language as tl
from _cuda_timing import median_ms

N, R = 4096, 128


@triton.jit
def noisy_form(  # type: ignore[no-untyped-def]
    left_ptr,
    right_ptr,
    base_ptr,
    out_ptr,
    m,
    sl_i,
    sl_t,
    sr_t,
    sr_j,
    bm: tl.constexpr,
    bn: tl.constexpr,
    r: tl.constexpr,
    span: tl.constexpr,
    base_first: tl.constexpr,
):
    rows = tl.program_id(0) * bm + tl.arange(0, bm)
    kr = tl.arange(0, r)
    left = tl.load(left_ptr + rows[:, None].to(tl.int64) * sl_i + kr[None, :] * sl_t)
    for jj in range(0, span):
        cols = (tl.program_id(1) * span + jj) * bn + tl.arange(0, bn)
        at = rows[:, None].to(tl.int64) * m + cols[None, :]
        if base_first == 2:  # A as the accumulator the product is added to
            right = tl.load(right_ptr + kr[:, None] * sr_t + cols[None, :].to(tl.int64) * sr_j)
            base = tl.load(base_ptr + at).to(tl.int32)
            acc = tl.dot(left, right, base, out_dtype=tl.int32)
            tl.store(out_ptr + at, acc.to(tl.int8))
        elif base_first == 1:
            base = tl.load(base_ptr + at)
            right = tl.load(right_ptr + kr[:, None] * sr_t + cols[None, :].to(tl.int64) * sr_j)
            acc = tl.dot(left, right, out_dtype=tl.int32)
            tl.store(out_ptr + at, (base.to(tl.int32) + acc).to(tl.int8))
        else:
            right = tl.load(right_ptr + kr[:, None] * sr_t + cols[None, :].to(tl.int64) * sr_j)
            acc = tl.dot(left, right, out_dtype=tl.int32)
            base = tl.load(base_ptr + at)
            tl.store(out_ptr + at, (base.to(tl.int32) + acc).to(tl.int8))


base = torch.randint(-63, 64, (N, N), dtype=torch.int8, device="cuda")
left = torch.randint(-1, 2, (N, R), dtype=torch.int8, device="cuda")
right_t = torch.randint(-1, 2, (N, R), dtype=torch.int8, device="cuda")
right = right_t.t()  # R×N, column-major: the layout of B'ᵀ's factor
out = torch.empty_like(base)
want = (base.to(torch.int32) + torch._int_mm(left, right_t.t())).to(torch.int8)
report: dict[str, Any] = {"device": torch.cuda.get_device_name()}
copy = torch.empty_like(base)
report["copy 16 MiB"] = round(median_ms(lambda: copy.copy_(base)), 4)
forms = []
for bm, bn, warps, stages, span, first in (
    (128, 128, 8, 3, 1, 0),  # the shipped form
    (128, 128, 8, 3, 1, 1),
    (128, 128, 8, 3, 1, 2),
    (128, 128, 4, 3, 1, 2),
    (64, 128, 4, 3, 1, 2),
    (128, 128, 8, 3, 2, 2),
    (128, 128, 8, 3, 4, 2),
):
    for name, r_ in (("column-major right", right),):
        grid = (N // bm, N // (bn * span))

        config = {
            "bm": bm,
            "bn": bn,
            "r": R,
            "span": span,
            "base_first": first,
            "num_warps": warps,
            "num_stages": stages,
        }

        def run(r_: Any = r_, grid: Any = grid, config: Any = config) -> None:
            noisy_form[grid](left, r_, base, out, N, *left.stride(), *r_.stride(), **config)

        out.zero_()
        run()
        assert torch.equal(out, want), (bm, bn, warps, span, first, name)
        forms.append(((bm, bn, warps, stages, span, first, name), round(median_ms(run), 4)))
report["forms (bm, bn, warps, stages, span, base_first, right layout): ms"] = forms
print(json.dumps(report))
