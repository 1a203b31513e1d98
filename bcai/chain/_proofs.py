"""State proofs for light clients: prove an account or a MatMul job under a
state root, and check such a proof with nothing but the root (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import bcai_native
from bcai.chain._state import Account, Job, State, encode_value, tree_key
from bcai.crypto import blake3


@dataclass(frozen=True, slots=True)
class StateProof:
    """Siblings from the root down, and the leaf where the walk ended (its
    key and value hash), or None for an empty subtree."""

    siblings: tuple[bytes, ...]
    terminal: tuple[bytes, bytes] | None


def prove_account(state: State, address: bytes) -> tuple[Account | None, StateProof]:
    """The account at `address` (None if it does not exist) and its proof
    against `state.root`."""
    key = ("account", address, 0)
    siblings, terminal = state.tree.prove(state.root, tree_key(key))
    return state.accounts.get(address), StateProof(tuple(siblings), terminal)


def verify_account(root: bytes, address: bytes, account: Account | None, proof: StateProof) -> bool:
    """Whether `account` (None: no account) is what `address` holds in the
    state with `root`. A zero account is stored as absent."""
    value = None
    if account is not None and account != Account(balance=0, nonce=0):
        value = blake3(account.encode())
    key = tree_key(("account", address, 0))
    return bcai_native.smt_verify(root, key, value, list(proof.siblings), proof.terminal)


def prove_job(state: State, job_id: bytes) -> tuple[Job | None, StateProof]:
    """The MatMul job `job_id` (None if the state has no such job) and its
    proof against `state.root`."""
    siblings, terminal = state.tree.prove(state.root, tree_key(("job", job_id, 0)))
    return state.jobs.get(job_id), StateProof(tuple(siblings), terminal)


def verify_job(root: bytes, job_id: bytes, job: Job | None, proof: StateProof) -> bool:
    """Whether `job` (None: no such job) is the record `job_id` has in the
    state with `root`: its post, status, solver and product id."""
    value = None if job is None else blake3(encode_value(job))
    key = tree_key(("job", job_id, 0))
    return bcai_native.smt_verify(root, key, value, list(proof.siblings), proof.terminal)
