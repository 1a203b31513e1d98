"""`bcai wallet new|show|balance` and `bcai tx send|stake|unstake|burn`.

Wallets are encrypted keystores (docs/config.md) in ``<data dir>/wallets/
<name>.json``, or any file given with ``--wallet``. The password comes from
``--password-file``, else ``$BCAI_PASSWORD``, else a prompt."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

from bcai.chain import COIN, Burn, Stake, Transfer, Unstake
from bcai.cli._node import run_client
from bcai.cli._output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Out,
    format_bcai,
    kv_table,
    wait_with_progress,
)
from bcai.crypto import KeystoreError, PrivateKey, load_keystore, save_keystore
from bcai.errors import BcaiError
from bcai.sdk import Client, TxStatus
from bcai.sdk._client import Payload


class CliInputError(BcaiError):
    """Codes: ``cli-bad-amount``, ``cli-bad-address``, ``cli-no-password``."""


def wallet_path(args: argparse.Namespace) -> Path:
    if getattr(args, "wallet", None):
        return Path(args.wallet).expanduser()
    return Path(args.data_dir).expanduser() / "wallets" / f"{args.name}.json"


def password(args: argparse.Namespace, *, confirm: bool = False) -> str:
    if getattr(args, "password_file", None):
        return Path(args.password_file).read_text().rstrip("\n")
    if os.environ.get("BCAI_PASSWORD"):
        return os.environ["BCAI_PASSWORD"]
    try:
        first = getpass.getpass("wallet password: ")
        if confirm and getpass.getpass("again: ") != first:
            raise CliInputError("cli-no-password", "the passwords differ")
    except EOFError as err:
        raise CliInputError(
            "cli-no-password", "no password: use --password-file or $BCAI_PASSWORD"
        ) from err
    return first


def parse_amount(text: str) -> int:
    """'1.5' (BCAI) → base units; at most 9 decimals, more than zero."""
    try:
        value = Decimal(text) * COIN
    except InvalidOperation as err:
        raise CliInputError("cli-bad-amount", f"{text!r} is not a number of BCAI") from err
    if value != value.to_integral_value() or value <= 0 or value >= 2**64:
        raise CliInputError(
            "cli-bad-amount", f"{text!r}: a positive amount with at most 9 decimals"
        )
    return int(value)


def parse_address(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise CliInputError("cli-bad-address", f"{text!r} is not a 40-hex-digit address")
    return raw


def cmd_wallet_new(args: argparse.Namespace) -> int:
    out = Out(args.json)
    path = wallet_path(args)
    try:
        key = PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        save_keystore(path, key, password(args, confirm=True))
    except BcaiError as err:
        return out.error(err.code, err.message, EXIT_USAGE)
    doc = {"address": key.address.hex(), "public_key": key.public_key.hex(), "keystore": str(path)}
    out.result(doc, kv_table(doc, "new wallet"))
    return EXIT_OK


def _keystore_doc(args: argparse.Namespace) -> dict[str, str]:
    path = wallet_path(args)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise KeystoreError("keystore-not-found", f"no wallet at {path} (bcai wallet new)") from err
    except json.JSONDecodeError as err:
        raise KeystoreError("keystore-corrupt", f"{path}: {err}") from err
    return {"address": doc["address"], "public_key": doc["public_key"], "keystore": str(path)}


def cmd_wallet_show(args: argparse.Namespace) -> int:
    out = Out(args.json)
    try:
        doc = _keystore_doc(args)
    except BcaiError as err:
        return out.error(err.code, err.message, EXIT_USAGE)
    out.result(doc, kv_table(doc, "wallet"))
    return EXIT_OK


def cmd_wallet_balance(args: argparse.Namespace) -> int:
    def balance(c: Client, out: Out) -> int:
        address = args.address or _keystore_doc(args)["address"]
        account = c.account(parse_address(address).hex())
        doc = {
            "address": account.address,
            "balance": account.balance,
            "stake": account.stake,
            "nonce": account.nonce,
            "height": account.height,
            "proof_valid": account.verify(),
        }
        human = {
            **doc,
            "balance": format_bcai(account.balance),
            "stake": format_bcai(account.stake),
        }
        out.result(doc, kv_table(human, "account"))
        return EXIT_OK if doc["proof_valid"] else EXIT_FAILED

    return run_client(args, balance)


def _payload(args: argparse.Namespace) -> Payload:
    amount = parse_amount(args.amount)
    if args.tx_command == "send":
        return Transfer(to=parse_address(args.to), amount=amount)
    if args.tx_command == "stake":
        return Stake(amount=amount)
    if args.tx_command == "unstake":
        return Unstake(amount=amount)
    return Burn(amount=amount)


def cmd_tx(args: argparse.Namespace) -> int:
    def send(c: Client, out: Out) -> int:
        payload = _payload(args)
        try:
            key = load_keystore(wallet_path(args), password(args))
        except KeystoreError as err:
            return out.error(err.code, err.message, EXIT_USAGE)
        sent = c.send(key, payload, tip=args.tip)
        doc: dict[str, object] = {"id": sent.id, "status": sent.status}
        if args.wait:
            status = _wait(c, sent.id, args.timeout, show=not args.json)
            doc.update(status="included", block=status.block, height=status.height)
        out.result(doc, kv_table(doc, f"transaction ({args.tx_command})"))
        return EXIT_OK

    return run_client(args, send)


def _wait(c: Client, tx_id: str, timeout: float, *, show: bool) -> TxStatus:
    return wait_with_progress(
        "waiting for inclusion",
        show,
        lambda tick: c.wait_for_tx(
            tx_id, timeout=timeout, progress=lambda tx: tick(tx.status if tx else "unknown")
        ),
    )


def cmd_chain(args: argparse.Namespace) -> int:
    def show(c: Client, out: Out) -> int:
        if args.chain_command == "head":
            doc = c.head().raw
        elif args.chain_command == "block":
            doc = c.block(args.id, full_txs=args.full).raw
        else:
            doc = c.tx(args.id).raw
        out.result(doc)
        return EXIT_OK

    return run_client(args, show)
