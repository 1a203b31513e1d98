"""bcai.pouw — proof of useful work: noisy int8 matrix products as block
seals (consensus rules, pure). The scheme, its parameters and its soundness
argument are in docs/pouw.md; miners live in `bcai.mining`.
"""

from bcai.pouw._errors import InvalidSeal
from bcai.pouw._jobs import BlobJobs, content_id, matrix_blob
from bcai.pouw._noise import Noise, Seed, attempt_seed, noisy
from bcai.pouw._params import (
    DEVNET,
    GPU_NET,
    MAX_ENTRY,
    MAX_K,
    PouwParams,
    check_shape,
    genesis_extra,
    params_from_extra,
)
from bcai.pouw._seal import (
    Attempt,
    Opening,
    PouwSeal,
    attempt,
    challenges,
    full_verify,
    make_seal,
    recover_product,
    ticket,
    verify,
    work_product,
)
from bcai.pouw._transcript import digest_key, leaf_count, tile_digests, transcript
from bcai.pouw._verifier import PouwSealVerifier, decode_seal
from bcai.pouw._work import Work, check_work, derived_work

__all__ = [
    "DEVNET",
    "GPU_NET",
    "MAX_ENTRY",
    "MAX_K",
    "Attempt",
    "BlobJobs",
    "InvalidSeal",
    "Noise",
    "Opening",
    "PouwParams",
    "PouwSeal",
    "PouwSealVerifier",
    "Seed",
    "Work",
    "attempt",
    "attempt_seed",
    "challenges",
    "check_shape",
    "check_work",
    "content_id",
    "decode_seal",
    "derived_work",
    "digest_key",
    "full_verify",
    "genesis_extra",
    "leaf_count",
    "make_seal",
    "matrix_blob",
    "noisy",
    "params_from_extra",
    "recover_product",
    "ticket",
    "tile_digests",
    "transcript",
    "verify",
    "work_product",
]
