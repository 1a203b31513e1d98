"""The PoUW parameters (consensus): tile size b = noise rank r, spot checks,
Freivalds rounds and the shape of matrices derived from the parent hash."""

from __future__ import annotations

from dataclasses import dataclass

from bcai.pouw._errors import InvalidSeal

MAX_ENTRY = 63  # job matrices: 7-bit signed entries, |x| <= 63
MAX_NOISE_RANK = 64  # |E|, |F| <= r <= 64, so |A + E| <= 127 fits int8
MAX_K = (2**31 - 1) // (127 * 127)  # every int32 partial sum of A'B' is exact


def check_shape(params: PouwParams, n: int, k: int, m: int) -> None:
    """Raises ``pouw-shape`` unless the tile divides every side, and
    ``pouw-overflow`` where an int32 partial sum could overflow."""
    b = params.tile
    if min(n, k, m) < b or n % b or k % b or m % b:
        raise InvalidSeal("pouw-shape", f"{n}×{k}·{k}×{m} is not a multiple of the tile {b}")
    if k > MAX_K:
        raise InvalidSeal("pouw-overflow", f"k={k} > {MAX_K}: int32 partial sums could overflow")


@dataclass(frozen=True, slots=True)
class PouwParams:
    """`tile` = b = r: the transcript digests every b×b output tile after
    every b-wide slice of the inner dimension, and the noise has rank b.
    `checks` = s: intermediate and final transcript tiles recomputed by a
    verifier (s of each). `rounds`: Freivalds rounds on a job's product.
    `n`, `k`, `m`: the shape of matrices derived from the parent hash."""

    tile: int = 64
    checks: int = 8
    rounds: int = 2
    n: int = 4096
    k: int = 4096
    m: int = 4096

    def __post_init__(self) -> None:
        if not 1 <= self.tile <= MAX_NOISE_RANK:
            raise ValueError(f"tile {self.tile} outside 1..{MAX_NOISE_RANK}")
        if self.checks < 1 or self.rounds < 1:
            raise ValueError("checks and rounds must be >= 1")
        check_shape(self, self.n, self.k, self.m)


DEVNET = PouwParams(tile=32, checks=8, rounds=2, n=256, k=256, m=256)
GPU_NET = PouwParams(tile=64, checks=8, rounds=2, n=4096, k=4096, m=4096)


GENESIS_TAG = b"bcai-seal=pouw;"


def genesis_extra(params: PouwParams, note: bytes = b"") -> bytes:
    """The genesis `extra` of a chain sealed by PoUW with these parameters
    (every node reads the seal rule from its genesis)."""
    fields = ";".join(
        f"{name}={getattr(params, name)}" for name in ("tile", "checks", "rounds", "n", "k", "m")
    )
    return GENESIS_TAG + fields.encode() + (b";" + note if note else b"")


def params_from_extra(extra: bytes) -> PouwParams | None:
    """The PoUW parameters a genesis names, or None (a hash-sealed chain).
    Raises ``pouw-genesis`` when the tag is there but the fields are bad."""
    if not extra.startswith(GENESIS_TAG):
        return None
    values: dict[str, int] = {}
    try:
        for part in extra[len(GENESIS_TAG) :].decode().split(";"):
            name, _, value = part.partition("=")
            if name in ("tile", "checks", "rounds", "n", "k", "m"):
                values[name] = int(value)
        return PouwParams(**values)
    except (UnicodeDecodeError, ValueError, TypeError) as err:
        raise InvalidSeal("pouw-genesis", f"bad PoUW parameters in the genesis: {err}") from err
