"""The Hopper mining loop as a pipeline of steps on two sets of SMs.

Step i (one CUDA graph, launched when attempt i's keys are in) runs on the
main branch the noisy operands of attempt i − 1 on the whole GPU, then its
transcript on all SMs but `spare` (`bcai.mining._sm90`, b = 128); beside
that transcript, on the spare SMs, the Merkle root of attempt i − 2 (and
its copy to the host) and the noise XOF of attempt i. Each of those side
kernels is launched with at most `spare` blocks, so that the transcript's
persistent blocks never wait for an SM; the transcript at n = 4096 is bound
by L2, not by its SMs, and loses little to the spare ones (H100: 0.098 →
0.105 ms with 18 spare, while the Merkle root and XOF beside it, which took
≈ 0.06 ms between transcripts, add ≈ 0.01; docs/benchmarks.md, session 9).

Neighbouring nonces share one noise side (`bcai.pouw._noise`): a step
forms only the noisy operand whose side seed differs from the one its
buffer holds, and the XOF fills only the factors whose side seed differs
from theirs (both when nothing is held yet, or nonces come out of order) —
so with nonces in order a step forms one operand, 16 MiB at n = 4096, not
two (H100: 0.129–0.136 ms a step against 0.142–0.149; docs/benchmarks.md,
session 12).

Attempt i's leaves and root are on the host once step i + 2 is done (and
until step i + 6 puts another's in their place): `mine` keeps DEPTH = 5
attempts launched (steps i + 3 and i + 4 queued while the host reads
attempt i), so in the steady state every step is a recorded graph (one for
each slot — the device's keys and leaves alternate by i mod 2, the host's
keys and results by i mod 4 — and each pair of sides its noisy operands
and XOF form). An attempt finished before its steps were launched (the
first ones, `attempt_leaves`, a loop's last) has them run at once,
eagerly."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from bcai.mining import _device_hash, _sm90
from bcai.pouw import Work
from bcai.pouw._noise import Seed
from bcai.pouw._transcript import LEAF_BYTES

try:
    import cupy
except ImportError:  # pragma: no cover - cupy is the `gpu` extra
    cupy = None

KEY_WORDS = 34  # the four XOF keys (32 words), then κ and λ
SPARE_SMS = 18  # the most left to the side branch (n = 4096: 114 transcript blocks, 9 tiles each)
# leaves whose Merkle root one spare SM computes beside a transcript (H100: 2,097,152 leaves on
# 8 SMs in 3.9 ms, beside a 6.6 ms transcript at n = 16384)
LEAVES_PER_SM = 262_144
DEPTH = 5  # attempts `mine` keeps launched: two steps queued beyond the three of an attempt
HOST = DEPTH - 1  # the host's buffers (keys in, leaves and root out), by attempt mod HOST
Sides = tuple[bool, bool]  # whether E (A') and F (B'ᵀ) are formed anew
NEITHER: Sides = (False, False)


def spare_sms(n: int, k: int, m: int, most: int | None = None) -> int:
    """SMs to leave beside the transcript of (n×k)·(k×m), at most `most`
    (SPARE_SMS by default): as many as keep the transcript's rounds of tiles
    a block — one more round allowed from eight (n = 4096: 18 SMs, 9 rounds
    instead of 8; the kernel is bound by L2 there), none more below
    (n = 2048: 4 SMs) — but at least one for every LEAVES_PER_SM leaves, so
    that the Merkle root fits beside the transcript (n = 16384: 8 SMs)."""
    tiles = (n // _sm90.TILE) * (m // _sm90.TILE)
    leaves = tiles * (k // _sm90.TILE)
    sms = int(cupy.cuda.Device().attributes["MultiProcessorCount"])
    least = -(-tiles // sms)
    allowed = least + 1 if least >= 8 else least
    need = min(-(-leaves // LEAVES_PER_SM), sms // 4)
    for spare in range(min(SPARE_SMS if most is None else most, sms - 1), 0, -1):
        if -(-tiles // (sms - spare)) <= allowed:
            return max(spare, need)
    return max(1, need)  # with one, the side kernels wait for the transcript's last blocks


class DevicePipeline:
    """The steps over `work` (b = 128, on a Hopper GPU) with A and Bᵀ on the
    device (`a8`, `bt8`, int8)."""

    def __init__(self, work: Work, a8: Any, bt8: Any, spare: int | None = None) -> None:
        n, k, m = work.shape
        _sm90.check(n, k, m, _sm90.TILE)
        spare = spare_sms(n, k, m) if spare is None else spare
        self.work, self.tile, self.spare = work, _sm90.TILE, spare
        self.a2 = cupy.empty((n, k), cupy.int8)
        self.bt2 = cupy.empty((m, k), cupy.int8)
        self.operands = _sm90.Operands(self.a2, self.bt2)
        self.operands.spare = spare
        self.factors = _device_hash.factor_buffers(n, k, m, self.tile)
        e_l, e_rt, f_rt, f_l = self.factors
        left, right = (a8, e_l, e_rt, self.a2), (bt8, f_rt, f_l, self.bt2)
        self.noisy = {  # by the sides formed anew
            (True, True): _sm90.Noisy(left, right),
            (True, False): _sm90.Noisy(left),
            (False, True): _sm90.Noisy(right),
        }
        shapes, self.blocks = _device_hash.noise_shapes(n, k, m, self.tile)
        self.count = (k // self.tile) * (n // self.tile) * (m // self.tile)
        self.specs, self.leaves, self.keys_host, self.out_host = [], [], [], []
        self._pinned = []  # the page-locked memory behind keys_host and out_host
        for _ in range(2):  # attempt i's keys and leaves on the device in i % 2
            spec = cupy.zeros(KEY_WORDS + len(shapes), cupy.uint32)
            spec[KEY_WORDS:] = cupy.asarray(np.array(shapes, np.uint32))
            self.specs.append(spec)
            self.leaves.append(cupy.empty(self.count, cupy.uint32))
        for _ in range(HOST):  # on the host in i % HOST
            keys = cupy.cuda.alloc_pinned_memory(4 * KEY_WORDS)
            out = cupy.cuda.alloc_pinned_memory(4 * (self.count + 8))
            self._pinned += [keys, out]
            self.keys_host.append(np.frombuffer(keys, np.uint32, KEY_WORDS))
            self.out_host.append(np.frombuffer(out, np.uint32, self.count + 8))
        self.scratch = _device_hash.merkle_scratch(self.count)
        _device_hash.merkle_keys()  # uploaded now: a recording may copy nothing from the host
        self.main = cupy.cuda.Stream(non_blocking=True)
        self.side = cupy.cuda.Stream(non_blocking=True)
        # the steady-state step i, by i mod HOST and the sides its noisy operands and XOF form
        self.graphs: dict[tuple[int, Sides, Sides], Any] = {}
        self.seeds: list[tuple[bytes, bytes]] = [(b"", b"")] * HOST  # σ_E, σ_F by i mod HOST
        # the side seeds whose noisy operands (A', B'ᵀ) and factors the buffers hold once
        # the work enqueued so far is done
        self.formed: tuple[bytes, bytes] = (b"", b"")
        self.factored: tuple[bytes, bytes] = (b"", b"")
        self.launched = 0  # attempts whose keys are in (step `launched - 1` enqueued)
        self.transcribed = 0  # attempts whose noisy operands and transcript are enqueued
        self.rooted = 0  # attempts whose Merkle root and copy to the host are enqueued
        self.finished = 0  # attempts handed back by `finish`, in order
        # after step i, by i mod HOST; waited for by spinning (a thread of the host busy while
        # the miner runs; blocking waits measured alike within the loops' noise)
        self.done = [cupy.cuda.Event(block=False, disable_timing=True) for _ in range(HOST)]
        self.broken = False  # work failed part-way: the buffers' contents are unknown

    @staticmethod
    def _sides(seeds: tuple[bytes, bytes], held: tuple[bytes, bytes]) -> Sides:
        return seeds[0] != held[0], seeds[1] != held[1]

    @contextlib.contextmanager
    def _breaking(self) -> Iterator[None]:
        """Work enqueued within: if it fails part-way, what the operand and
        factor buffers hold is unknown (a later step would form the noisy
        operands from another attempt's factors), so the pipeline is broken
        for good — `GpuMiner` then starts a new one."""
        if self.broken:
            raise RuntimeError("the pipeline failed part-way before: start a new one")
        try:
            yield
        except BaseException:
            self.broken = True
            raise

    def launch(self, seed: Seed, digest_key: int) -> int:
        """Puts attempt i's keys in and enqueues step i; returns i."""
        i = self.launched
        slot = i % HOST
        if i >= HOST:
            self.done[slot].synchronize()  # step i − HOST has read this slot's keys
        self.keys_host[slot][:32] = np.frombuffer(_device_hash.noise_keys(seed), "<u4")
        self.keys_host[slot][32:] = (digest_key & 0xFFFFFFFF, digest_key >> 32)
        self.seeds[slot] = seed.e, seed.f
        transcript, root = self.transcribed == i - 1, self.rooted == i - 2
        previous = self.seeds[(i - 1) % HOST]
        noisy = self._sides(previous, self.formed) if transcript else NEITHER
        xof = self._sides(self.seeds[slot], self.factored)
        with self.main, self._breaking():
            if i >= 2 and transcript and root:  # the steady state
                key = (slot, noisy, xof)
                if key not in self.graphs:
                    self.main.begin_capture()
                    try:
                        self._step(i, noisy, xof, transcript=True, root=True)
                    except BaseException:
                        self.main.end_capture()  # a partial recording is dropped, not kept
                        raise
                    self.graphs[key] = self.main.end_capture()
                self.graphs[key].launch(self.main)
            else:
                self._step(i, noisy, xof, transcript=transcript, root=root)
            self.done[slot].record(self.main)
        if transcript:
            self.formed = previous
        self.factored = self.seeds[slot]
        self.launched = i + 1
        self.transcribed = max(self.transcribed, i)
        self.rooted = max(self.rooted, i - 1)
        return i

    def _step(self, i: int, noisy: Sides, xof: Sides | None, transcript: bool, root: bool) -> None:
        """Step i on `main` (CuPy's current stream): the noisy operands (the
        sides in `noisy`) and transcript of i − 1 (`transcript`), beside
        which the root of i − 2 (`root`), the keys of i in and its XOF (the
        factors of the sides in `xof`; neither keys nor XOF when None)."""
        if any(noisy):  # the XOF of i overwrites the factors the noisy operands of i − 1 read
            self.noisy[noisy].launch()
        fork, join = cupy.cuda.Event(disable_timing=True), cupy.cuda.Event(disable_timing=True)
        fork.record(self.main)
        self.side.wait_event(fork)
        try:
            self._branches(i, xof, transcript, root)
        finally:  # joined even when a launch fails, so that a recording can end
            join.record(self.side)
            self.main.wait_event(join)

    def _branches(self, i: int, xof: Sides | None, transcript: bool, root: bool) -> None:
        """The transcript of i − 1 on `main`; the root of i − 2, the keys of
        i and its XOF on `side` (`_step`)."""
        slot = i % 2
        if transcript:
            self.operands.leaves(self.specs[1 - slot][32:KEY_WORDS], self.leaves[1 - slot])
        with self.side:
            if root:
                self._root(i - 2)
            if xof is not None:  # the keys in on this branch: nothing on main waits for the copy
                cupy.cuda.runtime.memcpyAsync(
                    self.specs[slot].data.ptr,
                    self.keys_host[i % HOST].ctypes.data,
                    4 * KEY_WORDS,
                    cupy.cuda.runtime.memcpyHostToDevice,
                    self.side.ptr,
                )
            if xof is not None and any(xof):
                factors = {
                    (True, True): _device_hash.BOTH,
                    (True, False): _device_hash.LEFT,
                    (False, True): _device_hash.RIGHT,
                }[xof]
                _device_hash.launch_noise(
                    self.specs[slot][:32],
                    self.specs[slot][KEY_WORDS:],
                    self.factors,
                    self.blocks,
                    max(1, self.spare // factors[1]),  # at most `spare` blocks in all
                    factors,
                )

    def _root(self, j: int, beside: bool = True) -> None:
        """The root of attempt j's leaves and its copy (with the leaves) to
        the host, on CuPy's current stream; on the spare SMs when `beside`
        the transcript, else on all."""
        stream = cupy.cuda.get_current_stream()
        leaves = self.leaves[j % 2]
        grid = self.spare if beside else None
        root = _device_hash.merkle_root(leaves, LEAF_BYTES, self.scratch, grid=grid)
        copy, to_host = cupy.cuda.runtime.memcpyAsync, cupy.cuda.runtime.memcpyDeviceToHost
        out = self.out_host[j % HOST].ctypes.data
        copy(out, leaves.data.ptr, leaves.nbytes, to_host, stream.ptr)
        copy(out + leaves.nbytes, root.data.ptr, 32, to_host, stream.ptr)

    def finish(self, i: int) -> tuple[bytes, bytes]:
        """Attempt i's leaves and Merkle root: waits for step i + 2, or runs
        what is left of attempt i at once. Attempts finish in launch order;
        those skipped are dropped (a loop that found its seal leaves the
        rest), and one whose host buffer a later root took is refused."""
        if i < self.finished or i >= self.launched:
            raise RuntimeError(f"attempt {i} finished out of order (next: {self.finished})")
        if self.rooted > i + HOST:  # the root of i + HOST went where this one's was
            raise RuntimeError(
                f"attempt {i}'s leaves were overwritten: finish it within {DEPTH} launches"
            )
        if self.rooted <= i:  # step i + 2 not launched: what is left of attempt i, now
            with self.main, self._breaking():
                if self.transcribed <= i:  # nor step i + 1
                    seeds = self.seeds[i % HOST]
                    noisy = self._sides(seeds, self.formed)
                    self._step(i + 1, noisy, None, transcript=True, root=False)
                    self.formed = seeds
                    self.transcribed = i + 1
                self._root(i, beside=False)
                self.done[(i + 2) % HOST].record(self.main)  # as step i + 2 would
            self.rooted = i + 1
        self.done[(i + 2) % HOST].synchronize()  # step i + 2 or the work above, not what follows
        self.finished = i + 1
        out = self.out_host[i % HOST]
        return out[: self.count].tobytes(), out[self.count :].tobytes()
