"""bcai.chain: consensus rules for tokens and blocks (pure: no I/O, no clock).

Types with canonical encodings, the state and its sparse-Merkle commitment,
the state transition (`process_block` and its steps, each with a reason code),
ASERT difficulty, the base fee, seal verification and fork choice. The rules a
second implementation needs are written in docs/consensus.md.
"""

from bcai.chain._build import assemble_block, block_template, finish_block, sign_transaction
from bcai.chain._difficulty import asert_target, work_of
from bcai.chain._errors import InvalidBlock, InvalidTransaction
from bcai.chain._fees import effective_tip, next_base_fee
from bcai.chain._forkchoice import Tip, best_tip, is_better
from bcai.chain._params import COIN, MAX_TARGET, Allocation, ChainParams, Genesis, devnet_params
from bcai.chain._proofs import StateProof, prove_account, prove_job, verify_account, verify_job
from bcai.chain._seal import HashSeal, SealVerifier, seal_hash
from bcai.chain._state import (
    JOB_PENDING,
    JOB_REFUNDED,
    JOB_SEALED,
    Account,
    Job,
    Overlay,
    State,
    Supply,
    Undo,
    revert,
    tree_key,
)
from bcai.chain._transition import (
    BlockResult,
    ParentContext,
    apply_transaction,
    check_block_without_state,
    check_header,
    check_job_shape,
    check_tx_root,
    expected_target,
    genesis_header,
    genesis_state,
    process_block,
)
from bcai.chain._types import (
    Block,
    Burn,
    Header,
    MatMulPost,
    Stake,
    Transaction,
    Transfer,
    UnsignedTransaction,
    Unstake,
)

__all__ = [
    "COIN",
    "JOB_PENDING",
    "JOB_REFUNDED",
    "JOB_SEALED",
    "MAX_TARGET",
    "Account",
    "Allocation",
    "Block",
    "BlockResult",
    "Burn",
    "ChainParams",
    "Genesis",
    "HashSeal",
    "Header",
    "InvalidBlock",
    "InvalidTransaction",
    "Job",
    "MatMulPost",
    "Overlay",
    "ParentContext",
    "SealVerifier",
    "Stake",
    "State",
    "StateProof",
    "Supply",
    "Tip",
    "Transaction",
    "Transfer",
    "Undo",
    "UnsignedTransaction",
    "Unstake",
    "apply_transaction",
    "asert_target",
    "assemble_block",
    "best_tip",
    "block_template",
    "check_block_without_state",
    "check_header",
    "check_job_shape",
    "check_tx_root",
    "devnet_params",
    "effective_tip",
    "expected_target",
    "finish_block",
    "genesis_header",
    "genesis_state",
    "is_better",
    "next_base_fee",
    "process_block",
    "prove_account",
    "prove_job",
    "revert",
    "seal_hash",
    "sign_transaction",
    "tree_key",
    "verify_account",
    "verify_job",
    "work_of",
]
