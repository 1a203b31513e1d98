"""The PoUW parameters (consensus): tile size b = noise rank r, spot checks,
Freivalds rounds and the shape of matrices derived from the parent hash."""

from __future__ import annotations

from dataclasses import dataclass

from bcai.pouw._errors import InvalidSeal

MAX_ENTRY = 63  # job matrices: 7-bit signed entries, |x| <= 63
# |E|, |F| <= 64, so |A + E| <= 127 fits int8: the noise factors have rank r
# (up to 128) but at most MAX_NOISE_TERMS non-zeros per row of E_L and per
# column of F_R (dense while r <= 64, sparse above: bcai.pouw._noise)
MAX_NOISE_TERMS = 64
# every int32 partial sum of A'B' is exact; the int8 kernels (`kernels.matmul_i8`,
# the Rust transcript) bound |entries| by 128, so the limit is theirs
MAX_K = (2**31 - 1) // (128 * 128)
MAX_CHECKS = 64
MAX_ROUNDS = 128
# powers of two; the GPU kernels take 4..64 (__dp4a) and 64, 128 (tensor cores)
TILES = (2, 4, 8, 16, 32, 64, 128)  # even: the digest takes a row's entries in pairs


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

    tile: int = 128
    checks: int = 8
    rounds: int = 2
    n: int = 4096
    k: int = 4096
    m: int = 4096

    def __post_init__(self) -> None:
        """Raises ``pouw-params`` for a tile, checks or rounds out of their
        range, ``pouw-shape`` / ``pouw-overflow`` for a derived shape."""
        if self.tile not in TILES:
            raise InvalidSeal("pouw-params", f"tile {self.tile} is not one of {TILES}")
        if not 1 <= self.checks <= MAX_CHECKS or not 1 <= self.rounds <= MAX_ROUNDS:
            raise InvalidSeal(
                "pouw-params",
                f"checks must be 1..{MAX_CHECKS} and rounds 1..{MAX_ROUNDS}, "
                f"got {self.checks} and {self.rounds}",
            )
        check_shape(self, self.n, self.k, self.m)


# the devnet's (`bcai devnet`): 128³ products in 32-wide tiles, a fraction of a
# millisecond an attempt on one core, so a 2-core machine runs four nodes
DEVNET = PouwParams(tile=32, checks=8, rounds=2, n=128, k=128, m=128)
GPU_NET = PouwParams(tile=128, checks=8, rounds=2, n=4096, k=4096, m=4096)


# the seal rule's version is in the tag: 2 since neighbouring nonces share one noise side
# (docs/pouw.md); a genesis of an earlier rule is refused, not read as hash-sealed
GENESIS_TAG = b"bcai-seal=pouw2;"
RETIRED_TAGS = (b"bcai-seal=pouw;",)


def genesis_extra(params: PouwParams, note: bytes = b"") -> bytes:
    """The genesis `extra` of a chain sealed by PoUW with these parameters
    (every node reads the seal rule from its genesis)."""
    fields = ";".join(f"{name}={getattr(params, name)}" for name in FIELDS)
    return GENESIS_TAG + fields.encode() + (b";" + note if note else b"")


FIELDS = ("tile", "checks", "rounds", "n", "k", "m")


def params_from_extra(extra: bytes) -> PouwParams | None:
    """The PoUW parameters a genesis names, or None (a hash-sealed chain):
    the six fields in order right after the tag; anything after them is a
    note. Raises ``pouw-genesis`` when the tag is there but the fields are
    not, ``pouw-genesis-version`` for the tag of an earlier seal rule."""
    if extra.startswith(RETIRED_TAGS):
        raise InvalidSeal(
            "pouw-genesis-version",
            "the genesis names an earlier PoUW seal rule (v1: fresh noise on both sides every "
            "nonce), which this version does not verify: start the chain anew",
        )
    if not extra.startswith(GENESIS_TAG):
        return None
    try:
        parts = extra[len(GENESIS_TAG) :].decode().split(";")
        values: dict[str, int] = {}
        for name, part in zip(FIELDS, parts, strict=False):
            key, sep, value = part.partition("=")
            if key != name or not sep or not value.isdigit():
                raise ValueError(f"expected {name}=<integer>, got {part!r}")
            values[name] = int(value)
        if len(values) != len(FIELDS):
            raise ValueError(f"expected the fields {', '.join(FIELDS)}")
        return PouwParams(**values)
    except (UnicodeDecodeError, ValueError, TypeError) as err:
        raise InvalidSeal("pouw-genesis", f"bad PoUW parameters in the genesis: {err}") from err
