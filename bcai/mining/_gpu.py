"""The GPU miner. On Hopper with b = 128 (work within PIPELINE_WORK) attempts run
as the steps of `bcai.mining._gpu_pipeline` (the hand-written kernels of
`bcai.mining._sm90`: each transcript beside the previous attempt's Merkle
root and the next one's noise XOF). Otherwise, with PyTorch's Triton and a
tile of 64 or 128, a whole attempt runs on the device as one recorded CUDA
graph per stream (`bcai.mining._gpu_graph`: BLAKE3 noise, noisy operands,
the tensor-core transcript — by the hand-written kernels on Hopper at
b = 128, else by Triton's — the Merkle root). Otherwise the
noise comes from the host, the noisy operands are formed through CuPy and
the `__dp4a` kernel (native/cuda/pouw.cu, tiles 4 … 64) writes the
transcript; the host builds the tree."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from bcai.mining import _sm90, _triton
from bcai.mining._gpu_graph import DeviceAttempt
from bcai.mining._gpu_pipeline import DEPTH as PIPELINE_DEPTH
from bcai.mining._gpu_pipeline import DevicePipeline
from bcai.pouw import PouwParams, Work
from bcai.pouw._errors import InvalidSeal
from bcai.pouw._noise import Noise, Seed
from bcai.pouw._transcript import digest_key
from bcai.vm._cupy_machine import available

try:
    import cupy
except ImportError:  # pragma: no cover - cupy is the `gpu` extra
    cupy = None

I8 = npt.NDArray[np.int8]
DEPTH = 3  # attempts in flight, a stream each: the GPU never waits for the host between them
# From this much work an attempt (n·k·m) the attempts in flight share one stream: the GPU runs
# them one after the other. A persistent transcript kernel (one block an SM, tiles assigned up
# front) waits for every SM to be free of other streams' small kernels and ends with its latest
# block, so overlapping them costs it more than they take (H100, hand-written kernels: n = 16384,
# 8.0-8.1 ms an attempt on one stream against 9.7-12.8 on three; n = 8192 alike; n = 4096, 0.19
# against 0.16-0.17: docs/benchmarks.md, session 8).
SERIAL_WORK = 8192**3
# Work an attempt (n·k·m, from, below) for which, on Hopper at b = 128, the attempts run as the
# steps of `bcai.mining._gpu_pipeline` instead (n = 4096: 0.145 against 0.152-0.163 ms an
# attempt on three streams; n = 8192: 1.02-1.04 against 1.08-1.10 on one stream; smaller work
# leaves the side branch longer than the transcript (n = 2048: 0.080 against 0.047 on three
# streams); at 16384, 8 SMs spared for the Merkle root of 2M leaves, no faster than one stream:
# docs/benchmarks.md, session 9).
PIPELINE_WORK = (4096**3, 16384**3)


@functools.cache
def _kernel() -> Any:
    source = resources.files("bcai.mining").joinpath("cuda/pouw.cu").read_text()
    return cupy.RawModule(code=source, options=("-std=c++14",)).get_function("bcai_pouw_transcript")


class GpuMiner:
    """`sm90`: the noisy operands and the transcript for b = 128 by the
    hand-written Hopper kernels (`bcai.mining._sm90`) instead of Triton's;
    by default wherever they run (on an H100 11–14% more attempts per
    second, docs/benchmarks.md). `sm90=False` keeps Triton's (`gpu-triton`)."""

    name = "gpu"

    def __init__(self, sm90: bool | None = None) -> None:
        if not available():
            raise InvalidSeal("pouw-miner-missing", "the GPU miner needs CuPy and a CUDA device")
        self.sm90 = sm90 is not False and _sm90.available()
        if sm90 and not self.sm90:
            raise InvalidSeal(
                "pouw-miner-missing",
                "the sm90 kernel needs a Hopper GPU (compute capability 9.0) and CuPy's NVRTC",
            )
        self.name = "gpu" if sm90 is None else ("gpu-sm90" if sm90 else "gpu-triton")
        self._work: tuple[Work, Any, Any] | None = None  # (work, A, Bᵀ) on the device
        self._int8_work: tuple[Work, Any, Any] | None = None  # (work, A, Bᵀ) as int8
        self.depth = DEPTH  # attempts in flight (`mine` keeps this many launched)
        self._attempts: list[DeviceAttempt | None] = [None] * DEPTH  # a recorded attempt per stream
        self._streams: list[Any] | None = None  # attempts take the streams in turn
        self._serial = False  # the streams are one (SERIAL_WORK)
        self._buffers: list[Any] = [None] * DEPTH  # a pinned host buffer per stream
        self._pipeline: DevicePipeline | None = None  # within PIPELINE_WORK on Hopper, b = 128
        self._turn = 0
        self.tensor_cores = _triton.available()

    def _operands(self, work: Work) -> tuple[Any, Any]:
        if self._work is None or self._work[0] is not work:
            a = cupy.asarray(work.a, dtype=cupy.float32)
            bt = cupy.asarray(np.ascontiguousarray(work.b.T), dtype=cupy.float32)
            self._work = (work, a, bt)
        return self._work[1], self._work[2]

    def _pipelined(self, work: Work, tile: int) -> bool:
        """Whether attempts over `work` run as `DevicePipeline` steps."""
        n, k, m = work.shape
        low, high = PIPELINE_WORK
        return self.sm90 and low <= n * k * m < high and _sm90.fits(n, k, m, tile)

    def depth_for(self, work: Work, params: PouwParams) -> int:
        """Attempts `mine` keeps launched over `work`: a pipeline's, else one
        a stream."""
        return PIPELINE_DEPTH if self._pipelined(work, params.tile) else DEPTH

    def _int8(self, work: Work) -> tuple[Any, Any]:
        """A and Bᵀ of `work` on the device as int8 (uploaded once a work)."""
        if self._int8_work is None or self._int8_work[0] is not work:
            a8 = cupy.asarray(np.ascontiguousarray(work.a))
            bt8 = cupy.asarray(np.ascontiguousarray(work.b.T))
            self._int8_work = (work, a8, bt8)
            self._attempts = [None] * DEPTH
            self._pipeline = None
        return self._int8_work[1], self._int8_work[2]

    def _device_pipeline(self, work: Work) -> DevicePipeline:
        a8, bt8 = self._int8(work)
        if self._pipeline is None or self._pipeline.broken:  # a broken one is dropped
            self._pipeline = DevicePipeline(work, a8, bt8)
        return self._pipeline

    def _device_attempt(self, work: Work, tile: int) -> DeviceAttempt:
        """The recorded attempt of this turn's stream for `work` (built the
        first time, with A and Bᵀ uploaded once for both streams)."""
        assert self._streams is not None
        self._int8(work)
        assert self._int8_work is not None
        held = self._attempts[self._turn]
        sm90 = self.sm90 and _sm90.fits(*work.shape, tile)
        if held is None or held.tile != tile or (held.sm90 is not None) != sm90:
            _, a8, bt8 = self._int8_work
            held = DeviceAttempt(work, tile, self._streams[self._turn], a8, bt8, sm90)
            self._attempts[self._turn] = held
        return held

    def attempt_leaves(self, work: Work, seed: Seed, params: PouwParams) -> bytes:
        """One attempt's leaves: noise, noisy operands and transcript on the
        device (`launch`), waited for."""
        return self.finish(self.launch(work, seed, params))[0]

    def launch(self, work: Work, seed: Seed, params: PouwParams) -> Any:
        """Starts an attempt on the next of `DEPTH` streams and returns at once
        (the host may prepare the next attempt while the GPU runs this one).
        With the tensor cores everything happens on the device, the Merkle
        root included; otherwise the noise factors come from the host."""
        n, k, m = work.shape
        self._turn = (self._turn + 1) % DEPTH
        serial = n * k * m >= SERIAL_WORK
        if self._streams is None or serial != self._serial:
            one = cupy.cuda.Stream()
            self._streams = [one if serial else cupy.cuda.Stream() for _ in range(DEPTH)]
            self._serial = serial
            self._attempts = [None] * DEPTH  # recorded on the streams they had
        if self._pipelined(work, params.tile):
            pipeline = self._device_pipeline(work)
            return pipeline, pipeline.launch(seed, digest_key(seed))
        if self.tensor_cores and params.tile in (64, 128):
            attempt = self._device_attempt(work, params.tile)
            attempt.launch(seed, digest_key(seed))
            return attempt
        stream = self._streams[self._turn]
        with stream:  # float32 products: exact, every entry of E and F is a sum of <= 64 terms ±1
            noise = Noise.derive(seed, n, k, m, params.tile)
            a, bt = self._operands(work)
            f32 = cupy.float32
            e = cupy.asarray(noise.e_l, f32) @ cupy.asarray(noise.e_r, f32)
            ft = cupy.asarray(np.ascontiguousarray(noise.f_r.T), f32) @ cupy.asarray(
                np.ascontiguousarray(noise.f_l.T), f32
            )
            a2 = (a + e).astype(cupy.int8)
            bt2 = (bt + ft).astype(cupy.int8)
            out = self.leaves_device(a2, bt2, params.tile, digest_key(seed))
            memory, leaves = self._pinned(self._turn, out.size, out.dtype)
            cupy.cuda.runtime.memcpyAsync(
                memory.ptr,
                out.data.ptr,
                out.nbytes,
                cupy.cuda.runtime.memcpyDeviceToHost,
                stream.ptr,
            )
        return stream, leaves, out

    def _pinned(self, turn: int, size: int, dtype: Any) -> tuple[Any, Any]:
        """A page-locked host buffer per stream, kept (allocating one costs
        milliseconds)."""
        held: tuple[Any, Any] | None = self._buffers[turn]
        if held is None or held[1].size != size or held[1].dtype != dtype:
            memory = cupy.cuda.alloc_pinned_memory(np.dtype(dtype).itemsize * size)
            held = self._buffers[turn] = (memory, np.frombuffer(memory, dtype, size))
        return held

    def finish(self, launched: Any) -> tuple[bytes, bytes | None]:
        """Waits for a launched attempt: its leaves, and its Merkle root when
        the device computed it (else None)."""
        if isinstance(launched, DeviceAttempt):
            return launched.finish()
        if isinstance(launched[0], DevicePipeline):
            pipeline, index = launched
            return pipeline.finish(index)  # type: ignore[no-any-return]
        stream, leaves, _ = launched
        stream.synchronize()
        return leaves.astype("<u4").tobytes(), None

    def leaves_device(self, a2: Any, bt: Any, tile: int, key: int) -> Any:
        """Leaves (uint32, on the device) of device operands A' and B'ᵀ, on
        CuPy's current stream."""
        n, k = a2.shape
        m = bt.shape[0]
        if self.sm90 and _sm90.fits(n, k, m, tile):
            out = cupy.empty((k // tile) * (n // tile) * (m // tile), cupy.uint32)
            keys = cupy.asarray(np.array([key & 0xFFFFFFFF, key >> 32], np.uint32))
            operands = _sm90.Operands(cupy.ascontiguousarray(a2), cupy.ascontiguousarray(bt))
            operands.leaves(keys, out)
            return out
        if self.tensor_cores and tile in (64, 128):
            import torch  # noqa: PLC0415 - with Triton, the `torch` extra

            stream = cupy.cuda.get_current_stream()
            external = torch.cuda.ExternalStream(stream.ptr)  # type: ignore[no-untyped-call]
            keys = cupy.asarray(np.array([key & 0xFFFFFFFF, key >> 32], np.uint32))
            with torch.cuda.stream(external):
                out = _triton.leaves(
                    torch.utils.dlpack.from_dlpack(a2),
                    torch.utils.dlpack.from_dlpack(bt),
                    tile,
                    torch.utils.dlpack.from_dlpack(keys),
                )
            return cupy.from_dlpack(out)
        if tile % 4 or tile > 64:
            raise InvalidSeal(
                "pouw-shape",
                f"the GPU miner needs a tile of 4..64 by 4 (64 or 128 with Triton), got {tile}",
            )
        out = cupy.empty((k // tile) * (n // tile) * (m // tile), cupy.uint32)
        q = tile // 4
        words = tile * (q + 1)
        shared = 4 * (2 * words + (2 * words) % 2) + 8 * q * q
        _kernel()(
            (m // tile, n // tile),
            (q, q),
            (
                a2,
                bt,
                out,
                np.int32(n),
                np.int32(k),
                np.int32(m),
                np.int32(tile),
                np.uint32(key & 0xFFFFFFFF),
                np.uint32(key >> 32),
            ),
            shared_mem=shared,
        )
        return out

    def leaves(self, a2: I8, b2: I8, tile: int, key: int) -> bytes:
        a = cupy.asarray(np.ascontiguousarray(a2))
        bt = cupy.asarray(np.ascontiguousarray(b2.T))
        return bytes(self.leaves_device(a, bt, tile, key).get().astype("<u4").tobytes())
