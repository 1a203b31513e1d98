"""`bcai job post|status|list|result`: MatMul jobs from the command line.

A job pays, from a wallet, for C = A·B computed by the network's miners
(docs/pouw.md): A (n×k) and B (k×m) are NumPy ``.npy`` files of integers
within ±63 with sides multiples of 128; they are checked here as the chain
checks them, uploaded to the node as blobs, and posted with the payment held
in escrow until a block seals the job (the producer is paid) or the deadline
passes (the escrow returns). C comes back as an n×m int32 ``.npy``, its
bytes checked against the content id the chain recorded, and against A·B
here by Freivalds (random integer vectors, exact int64 products) when A and
B are at hand (``post --wait --out``, ``result --check A B``) — a C that
fails is not written."""

from __future__ import annotations

import argparse
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bcai.chain import InvalidTransaction
from bcai.cli._node import run_client
from bcai.cli._output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Out,
    format_bcai,
    kv_table,
    rows_table,
    wait_with_progress,
)
from bcai.cli._wallet import CliInputError, parse_address, parse_amount, password, wallet_path
from bcai.crypto import KeystoreError, load_keystore
from bcai.sdk import Client, JobInfo, matmul_job

# a wrong C passes a round with probability at most 1/2049 (vectors of integers in [-1024, 1024]);
# the products stay exact in int64: |B·x| ≤ m·63·1024, |A·(B·x)| ≤ k·m·63²·1024 < 2^56 and
# |C·x| ≤ m·k·63²·1024 < 2^56 for the chain's largest jobs (k ≤ 130,944, m ≤ 65,536)
FREIVALDS_ROUNDS = 4
FREIVALDS_RANGE = 1024
ROWS = 4096  # rows converted to int64 at a time


def load_matrix(path: str, name: str) -> npt.NDArray[np.generic]:
    """A matrix from a ``.npy`` file (no pickles); ``cli-bad-file`` otherwise."""
    try:
        with Path(path).expanduser().open("rb") as f:  # closed here whatever np.load makes of it
            matrix = np.load(f, allow_pickle=False)
            if not isinstance(matrix, np.ndarray):
                matrix.close()  # an .npz archive
                raise CliInputError("cli-bad-file", f"{name}: {path} holds no single array")
    except FileNotFoundError as err:
        raise CliInputError("cli-bad-file", f"{name}: no file {path}") from err
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise CliInputError("cli-bad-file", f"{name}: {path} is not a .npy array ({err})") from err
    return matrix


def save_matrix(path: str, matrix: npt.NDArray[np.int32]) -> str:
    """Writes `matrix` as .npy at `path` (a temporary file beside it, then
    renamed: never a partial file)."""
    target = Path(path).expanduser()
    part = target.with_name(f".{target.name}.part")
    try:
        with part.open("wb") as f:  # np.save would append .npy to another suffix
            np.save(f, matrix, allow_pickle=False)
        os.replace(part, target)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise CliInputError("cli-bad-file", f"cannot write {target}: {err}") from err
    return str(target)


def _times(matrix: npt.NDArray[np.generic], x: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """matrix·x in int64, a block of rows at a time (no int64 copy of the whole matrix)."""
    out = np.empty(matrix.shape[0], np.int64)
    for i in range(0, matrix.shape[0], ROWS):
        out[i : i + ROWS] = matrix[i : i + ROWS].astype(np.int64) @ x
    return out


def freivalds(
    a: npt.NDArray[np.generic], b: npt.NDArray[np.generic], c: npt.NDArray[np.int32]
) -> bool:
    """Whether C = A·B, by FREIVALDS_ROUNDS random integer vectors x:
    A·(B·x) against C·x, exact in int64 (A and B within ±63)."""
    if c.shape != (a.shape[0], b.shape[1]) or a.shape[1] != b.shape[0]:
        return False
    rng = np.random.default_rng()
    for _ in range(FREIVALDS_ROUNDS):
        draw = rng.integers(-FREIVALDS_RANGE, FREIVALDS_RANGE + 1, size=b.shape[1])
        x: npt.NDArray[np.int64] = np.asarray(draw, np.int64)
        if not np.array_equal(_times(a, _times(b, x)), _times(c, x)):
            return False
    return True


def _job_doc(job: JobInfo) -> dict[str, Any]:
    doc: dict[str, Any] = dict(job.raw)
    doc.pop("proof", None)
    doc["proof_valid"] = job.verify() if job.proof is not None else None
    return doc


def _human(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "amount": format_bcai(doc["amount"])} if "amount" in doc else doc


def _wait(c: Client, job_id: str, timeout: float, *, show: bool) -> JobInfo:
    return wait_with_progress(
        "waiting for a block to seal the job",
        show,
        lambda tick: c.wait_for_job(
            job_id, timeout=timeout, progress=lambda job: tick(job.status if job else "not seen")
        ),
    )


def _result(
    c: Client, out: Out, job: JobInfo, path: str, check: tuple[Any, Any] | None
) -> tuple[dict[str, Any], int]:
    """C written to `path`, checked against `check` = (A, B) when given;
    the doc and exit code."""
    product = c.product(job)
    doc: dict[str, Any] = {"id": job.id, "product": job.product, "shape": list(product.shape)}
    if check is not None:
        doc["check"] = "passed" if freivalds(check[0], check[1], product) else "failed"
        if doc["check"] == "failed":  # nothing written
            _failed(out, doc, "cli-product-mismatch", "C is not A·B: the node's C is wrong")
            return doc, EXIT_FAILED
    doc["out"] = save_matrix(path, product)
    return doc, EXIT_OK


def _failed(out: Out, doc: dict[str, Any], code: str, message: str) -> None:
    """A failure beside a result: named in the result's doc (one JSON
    document on stdout) and on stderr."""
    doc["error"] = {"code": code, "message": message}
    out.err.print(f"[bold red]error[/] [{code}] {message}", markup=True, highlight=False)


def cmd_job(args: argparse.Namespace) -> int:
    if args.job_command == "post":
        return run_client(args, lambda c, out: _post(c, out, args))
    if args.job_command == "status":
        return run_client(args, lambda c, out: _status(c, out, args))
    if args.job_command == "list":
        return run_client(args, lambda c, out: _list(c, out, args))
    return run_client(args, lambda c, out: _fetch(c, out, args))


def _post(c: Client, out: Out, args: argparse.Namespace) -> int:
    if args.out and not args.wait:
        return out.error("cli-bad-usage", "--out needs --wait (C exists once sealed)", EXIT_USAGE)
    a, b = load_matrix(args.a, "A"), load_matrix(args.b, "B")
    amount = parse_amount(args.amount)
    height = c.head().height
    deadline = args.deadline if args.deadline is not None else height + args.blocks
    job = matmul_job(a, b, amount=amount, deadline=deadline)  # checked before the password
    if deadline <= height + 1:
        message = f"deadline {deadline} is not after the next block's height {height + 1}"
        raise InvalidTransaction("tx-job-deadline", message)
    try:
        key = load_keystore(wallet_path(args), password(args))
    except KeystoreError as err:
        return out.error(err.code, err.message, EXIT_USAGE)
    sent = c.send_job(key, job, tip=args.tip)
    doc: dict[str, Any] = {"id": sent.id, "status": "unconfirmed"}
    doc.update(n=a.shape[0], k=a.shape[1], m=b.shape[1], amount=amount, deadline=deadline)
    code = EXIT_OK
    if args.wait:
        info = _wait(c, sent.id, args.timeout, show=not args.json)
        doc.update(_job_doc(info))
        if info.status != "sealed":
            message = f"no block sealed job {info.id} by height {info.deadline}: refunded"
            _failed(out, doc, "job-refunded", message)
            code = EXIT_FAILED
        elif args.out:
            result, code = _result(c, out, info, args.out, (a, b))
            doc.update(result)
    out.result(doc, kv_table(_human(doc), "MatMul job"))
    return code


def _status(c: Client, out: Out, args: argparse.Namespace) -> int:
    job = _wait(c, args.id, args.timeout, show=not args.json) if args.wait else c.job(args.id)
    doc = _job_doc(job)
    out.result(doc, kv_table(_human(doc), "MatMul job"))
    return EXIT_FAILED if doc["proof_valid"] is False else EXIT_OK


def _list(c: Client, out: Out, args: argparse.Namespace) -> int:
    poster = parse_address(args.poster).hex() if args.poster else None
    jobs = c.jobs(args.status, poster=poster, limit=args.limit)
    doc = {"status": args.status, "count": len(jobs), "jobs": [job.raw for job in jobs]}
    rows = [
        [
            job.raw.get("rank", ""),
            job.id[:16] + "…",
            job.status,
            format_bcai(job.amount),
            f"{job.n}×{job.k}·{job.k}×{job.m}",
            job.deadline,
            job.poster[:12] + "…",
            _yes_no(job.raw.get("blobs_here")),
        ]
        for job in jobs
    ]
    columns = ["rank", "id", "status", "pays", "shape", "deadline", "poster", "A, B here"]
    out.result(doc, rows_table(f"MatMul jobs ({args.status})", columns, rows))
    return EXIT_OK


def _yes_no(flag: object) -> str:
    return "" if flag is None else "yes" if flag else "no"


def _fetch(c: Client, out: Out, args: argparse.Namespace) -> int:
    job = c.job(args.id)
    if job.status != "sealed":
        return out.error(
            "sdk-job-not-sealed", f"job {job.id} is {job.status}: no product", EXIT_FAILED
        )
    check = None
    if args.check:
        check = load_matrix(args.check[0], "A"), load_matrix(args.check[1], "B")
        post, _, _ = matmul_job(*check, amount=1, deadline=job.deadline)  # as the chain checks
        if (post.a.hex(), post.b.hex()) != (job.a, job.b):
            message = f"{args.check[0]} and {args.check[1]} are not job {job.id}'s A and B"
            return out.error("cli-not-the-jobs-matrices", message, EXIT_USAGE)
    doc, code = _result(c, out, job, args.out, check)
    out.result(doc, kv_table(doc, "MatMul job's product"))
    return code


def _positive(text: str) -> int:
    value = int(text)
    if value < 2:  # the posting block itself must come before the deadline
        raise argparse.ArgumentTypeError(f"{value}: at least 2 blocks")
    return value


def add_job_commands(sub: Any, wallet_args: Any) -> None:
    """`job post|status|result` under the `job` group's subparsers."""
    p = sub.add_parser("post", help="pay for C = A·B: upload A and B, post the job")
    wallet_args(p)
    p.add_argument("--a", required=True, help="A (n×k): a .npy of integers within ±63")
    p.add_argument("--b", required=True, help="B (k×m): a .npy of integers within ±63")
    p.add_argument("--amount", required=True, help="payment in BCAI, held in escrow until sealed")
    p.add_argument(
        "--blocks",
        type=_positive,
        default=100,
        help="deadline: blocks from the head (default 100; at least 2)",
    )
    p.add_argument("--deadline", type=int, help="deadline as a block height (instead of --blocks)")
    p.add_argument("--tip", type=int, default=1, help="tip per byte, base units (default 1)")
    p.add_argument("--wait", action="store_true", help="wait until a block seals the job")
    p.add_argument("--out", help="with --wait: write C (int32 .npy) here, checked against A·B")
    p.add_argument("--timeout", type=float, default=600.0, help="for --wait, seconds")
    p.set_defaults(func=cmd_job)
    p = sub.add_parser("status", help="a job's record: unconfirmed, pending, sealed or refunded")
    p.add_argument("id", help="the job's id (its posting transaction's id)")
    p.add_argument("--wait", action="store_true", help="wait until it is sealed or refunded")
    p.add_argument("--timeout", type=float, default=600.0, help="for --wait, seconds")
    p.set_defaults(func=cmd_job)
    p = sub.add_parser("list", help="jobs in the chain: pending ones in the order miners take them")
    p.add_argument(
        "--status",
        choices=("pending", "sealed", "refunded", "all"),
        default="pending",
        help="which jobs (default pending)",
    )
    p.add_argument("--poster", help="only this address's jobs")
    p.add_argument("--limit", type=int, default=100, help="at most this many (1..1000)")
    p.set_defaults(func=cmd_job)
    p = sub.add_parser("result", help="a sealed job's product C, written as an int32 .npy")
    p.add_argument("id", help="the job's id")
    p.add_argument("--out", required=True, help="where to write C (.npy)")
    p.add_argument(
        "--check", nargs=2, metavar=("A", "B"), help="check C = A·B here (Freivalds) against these"
    )
    p.set_defaults(func=cmd_job)
