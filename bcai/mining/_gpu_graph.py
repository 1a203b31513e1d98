"""A tensor-core attempt as one CUDA graph: noise factors from the XOF
(BLAKE3 on the device), the noise products and noisy operands, the
transcript, the Merkle root and the copy of leaves and root to the host —
recorded once per (work, tile, stream) and replayed per nonce after the
attempt's keys (136 bytes) are copied in. The host's share of an attempt is
then a few hashes and two calls, so the GPU never waits for Python."""

from __future__ import annotations

from typing import Any

import numpy as np

from bcai.mining import _device_hash, _sm90, _triton
from bcai.pouw import Work
from bcai.pouw._noise import Seed
from bcai.pouw._transcript import LEAF_BYTES

try:
    import cupy
except ImportError:  # pragma: no cover - cupy is the `gpu` extra
    cupy = None

KEY_WORDS = 34  # the four XOF keys (32 words), then κ and λ


class DeviceAttempt:
    """Buffers and graph of one attempt over `work` with tile b = r (64 or
    128) on `stream`; `a8`, `bt8` are A and Bᵀ on the device (int8). With
    `sm90`, the noisy operands and the transcript are the hand-written
    Hopper kernels' (`bcai.mining._sm90`), else Triton's."""

    def __init__(
        self, work: Work, tile: int, stream: Any, a8: Any, bt8: Any, sm90: bool = False
    ) -> None:
        import torch  # noqa: PLC0415 - with Triton, the `torch` extra

        n, k, m = work.shape
        _triton.check(n, k, m, tile)
        self.work, self.tile, self.stream = work, tile, stream
        self.a8, self.bt8 = a8, bt8
        shapes, self.blocks = _device_hash.noise_shapes(n, k, m, tile)
        self.spec = cupy.zeros(KEY_WORDS + len(shapes), cupy.uint32)
        self.spec[KEY_WORDS:] = cupy.asarray(np.array(shapes, np.uint32))
        self.a2 = cupy.empty((n, k), cupy.int8)
        self.bt2 = cupy.empty((m, k), cupy.int8)
        self.sm90 = _sm90.Operands(self.a2, self.bt2) if sm90 else None
        self.factors = _device_hash.factor_buffers(n, k, m, tile)
        e_l, e_rt, f_rt, f_l = self.factors
        # A' = A + E_L·E_R and B'ᵀ = Bᵀ + F_Rᵀ·F_Lᵀ in one launch of the Hopper kernel
        operands = (a8, e_l, e_rt, self.a2), (bt8, f_rt, f_l, self.bt2)
        self.noisy = _sm90.Noisy(*operands) if sm90 else None
        count = (k // tile) * (n // tile) * (m // tile)
        self.leaves = cupy.empty(count, cupy.uint32)
        self.scratch = _device_hash.merkle_scratch(count)
        self.keys_memory = cupy.cuda.alloc_pinned_memory(4 * KEY_WORDS)
        self.keys_host = np.frombuffer(self.keys_memory, np.uint32, KEY_WORDS)
        self.out_memory = cupy.cuda.alloc_pinned_memory(4 * (count + 8))
        self.out_host = np.frombuffer(self.out_memory, np.uint32, count + 8)
        view = torch.utils.dlpack.from_dlpack
        e_l, e_r, f_r, f_l = _device_hash.host_layout(self.factors)
        self.t = {
            name: view(array)
            for name, array in (
                ("e_l", e_l),
                ("e_r", e_r),
                ("f_rt", f_r.T),
                ("f_lt", f_l.T),
                ("a8", a8),
                ("bt8", bt8),
                ("a2", self.a2),
                ("bt2", self.bt2),
                ("leaves", self.leaves),
                ("keys", self.spec[32:KEY_WORDS]),
            )
        }
        self.external = torch.cuda.ExternalStream(stream.ptr)  # type: ignore[no-untyped-call]
        self.graph: Any = None
        self.done = cupy.cuda.Event(block=True, disable_timing=True)  # after this attempt's graph

    def _body(self) -> None:
        """Every step after the keys are in `spec`, on `stream`."""
        import torch  # noqa: PLC0415

        t, tile = self.t, self.tile
        _device_hash.launch_noise(self.spec[:32], self.spec[KEY_WORDS:], self.factors, self.blocks)
        if self.sm90 is not None and self.noisy is not None:  # on CuPy's current stream: this one
            self.noisy.launch()
            self.sm90.leaves(self.spec[32:KEY_WORDS], self.leaves)
        else:
            with torch.cuda.stream(self.external):
                _triton.noisy(t["a8"], t["e_l"], t["e_r"], t["a2"])  # A' = A + E_L·E_R
                _triton.noisy(t["bt8"], t["f_rt"], t["f_lt"], t["bt2"])  # B'ᵀ = Bᵀ + F_Rᵀ·F_Lᵀ
                _triton.leaves(t["a2"], t["bt2"], tile, t["keys"], out=t["leaves"])
        root = _device_hash.merkle_root(self.leaves, LEAF_BYTES, self.scratch)
        copy, to_host = cupy.cuda.runtime.memcpyAsync, cupy.cuda.runtime.memcpyDeviceToHost
        size = self.leaves.nbytes
        copy(self.out_memory.ptr, self.leaves.data.ptr, size, to_host, self.stream.ptr)
        copy(self.out_memory.ptr + size, root.data.ptr, 32, to_host, self.stream.ptr)

    def launch(self, seed: Seed, digest_key: int) -> None:
        """Copies this nonce's keys in and replays the attempt (the first
        time: runs it eagerly, then records the graph)."""
        self.keys_host[:32] = np.frombuffer(_device_hash.noise_keys(seed), "<u4")
        self.keys_host[32:] = (digest_key & 0xFFFFFFFF, digest_key >> 32)
        with self.stream:
            cupy.cuda.runtime.memcpyAsync(
                self.spec.data.ptr,
                self.keys_host.ctypes.data,
                4 * KEY_WORDS,
                cupy.cuda.runtime.memcpyHostToDevice,
                self.stream.ptr,
            )
            if self.graph is None:
                self._body()
                self.stream.synchronize()
                self.stream.begin_capture()
                try:
                    self._body()
                except BaseException:
                    self.stream.end_capture()  # a partial recording is dropped, not kept
                    raise
                self.graph = self.stream.end_capture()
            else:
                self.graph.launch(self.stream)
            self.done.record(self.stream)

    def finish(self) -> tuple[bytes, bytes]:
        """Waits for the attempt (not for what its stream runs after it):
        its leaves and Merkle root."""
        self.done.synchronize()
        count = self.leaves.size
        return self.out_host[:count].tobytes(), self.out_host[count:].tobytes()
