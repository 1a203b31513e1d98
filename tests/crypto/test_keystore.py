"""Encrypted keystores: a wrong password, a damaged file, unsafe permissions
and unknown versions each give their own clear error; nothing is overwritten."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bcai import crypto
from bcai.crypto import KeystoreError
from bcai.crypto._keystore import _checksum

FAST_N = 2**10  # tests use a cheap scrypt; one test keeps the default


def code_of(fn: object, *args: object) -> str:
    with pytest.raises(KeystoreError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.code


@pytest.fixture
def key() -> crypto.PrivateKey:
    return crypto.PrivateKey(b"\x07" * 32)


@pytest.fixture
def saved(tmp_path: Path, key: crypto.PrivateKey) -> Path:
    return crypto.save_keystore(tmp_path / "node.key", key, "correct horse", scrypt_n=FAST_N)


def test_round_trip_with_mode_0600(saved: Path, key: crypto.PrivateKey) -> None:
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    loaded = crypto.load_keystore(saved, "correct horse")
    assert loaded.public_key == key.public_key
    assert loaded.sign(b"m") == key.sign(b"m")
    assert [p.name for p in saved.parent.iterdir()] == ["node.key"]  # no temp file left
    assert key.seed_bytes().hex() not in saved.read_text()


def test_default_scrypt_cost(tmp_path: Path, key: crypto.PrivateKey) -> None:
    path = crypto.save_keystore(tmp_path / "k", key, "pw")
    assert json.loads(path.read_text())["n"] == 2**15
    assert crypto.load_keystore(path, "pw").address == key.address


def test_wrong_password(saved: Path) -> None:
    assert code_of(crypto.load_keystore, saved, "wrong horse") == "keystore-bad-password"
    assert code_of(crypto.load_keystore, saved, "") == "keystore-bad-password"


@pytest.mark.parametrize("field", ["ciphertext", "salt", "nonce", "public_key", "n", "checksum"])
def test_damaged_field_is_corrupt_not_bad_password(saved: Path, field: str) -> None:
    doc = json.loads(saved.read_text())
    value = doc[field]
    if isinstance(value, int):
        doc[field] = value * 2
    else:
        doc[field] = ("0" if value[0] != "0" else "1") + value[1:]
    saved.write_text(json.dumps(doc))
    assert code_of(crypto.load_keystore, saved, "correct horse") == "keystore-corrupt"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "list"])
def test_damaged_file(saved: Path, damage: str) -> None:
    raw = saved.read_bytes()
    saved.write_bytes(
        {"truncate": raw[: len(raw) // 2], "garbage": os.urandom(300), "empty": b"", "list": b"[]"}[
            damage
        ]
    )
    assert code_of(crypto.load_keystore, saved, "correct horse") == "keystore-corrupt"


def test_unsupported_version(saved: Path, key: crypto.PrivateKey) -> None:
    doc = json.loads(saved.read_text())
    doc["version"] = 99
    doc["checksum"] = _checksum(doc)
    saved.write_text(json.dumps(doc))
    assert code_of(crypto.load_keystore, saved, "correct horse") == "keystore-unsupported"


def test_refuses_to_overwrite(saved: Path, key: crypto.PrivateKey) -> None:
    before = saved.read_bytes()
    assert code_of(crypto.save_keystore, saved, key, "other") == "keystore-exists"
    assert saved.read_bytes() == before
    crypto.save_keystore(saved, key, "other", overwrite=True, scrypt_n=FAST_N)
    assert crypto.load_keystore(saved, "other").address == key.address


def test_insecure_permissions_and_missing_file(saved: Path, tmp_path: Path) -> None:
    saved.chmod(0o644)
    assert code_of(crypto.load_keystore, saved, "correct horse") == "keystore-insecure-permissions"
    assert code_of(crypto.load_keystore, tmp_path / "nope", "x") == "keystore-not-found"


def test_empty_password_refused(tmp_path: Path, key: crypto.PrivateKey) -> None:
    assert code_of(crypto.save_keystore, tmp_path / "k", key, "") == "keystore-empty-password"
    assert not (tmp_path / "k").exists()
