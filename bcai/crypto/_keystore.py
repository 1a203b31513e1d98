"""Encrypted keystore files: scrypt + ChaCha20-Poly1305, written with mode 0600.

File format (JSON, documented in docs/config.md):

    {"version": 1, "kdf": "scrypt", "n": 32768, "r": 8, "p": 1,
     "salt": hex, "cipher": "chacha20-poly1305", "nonce": hex,
     "public_key": hex, "address": hex, "ciphertext": hex, "checksum": hex}

The header (everything but ciphertext and checksum) is the AEAD's associated
data, so no parameter can be changed unnoticed. The checksum (BLAKE3 of the
whole file's other fields) tells damage from a wrong password: a damaged file
fails the checksum, a wrong password fails only the AEAD tag.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

import bcai_native
from bcai.crypto._keys import PrivateKey, address
from bcai.errors import BcaiError

VERSION = 1
DEFAULT_SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MAX_SCRYPT_N = 2**20
MAX_FILE_BYTES = 64 * 1024
_HEADER_FIELDS = (
    "version",
    "kdf",
    "n",
    "r",
    "p",
    "salt",
    "cipher",
    "nonce",
    "public_key",
    "address",
)


class KeystoreError(BcaiError):
    """Codes: ``keystore-bad-password``, ``keystore-corrupt``,
    ``keystore-unsupported``, ``keystore-exists``, ``keystore-not-found``,
    ``keystore-insecure-permissions``."""


def _kdf(password: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(password.encode())


def _header_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps({k: doc[k] for k in _HEADER_FIELDS}, sort_keys=True).encode()


def _checksum(doc: dict[str, Any]) -> str:
    body = _header_bytes(doc) + b"|" + doc["ciphertext"].encode()
    return bcai_native.blake3_derive_key("bcai 2026-11 keystore checksum", body).hex()


def encrypt_key(key: PrivateKey, password: str, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> bytes:
    """The keystore document (JSON bytes) holding `key` under `password`."""
    if not password:
        raise KeystoreError("keystore-empty-password", "refusing to encrypt with an empty password")
    salt, nonce = os.urandom(16), os.urandom(12)
    doc: dict[str, Any] = {
        "version": VERSION,
        "kdf": "scrypt",
        "n": scrypt_n,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": salt.hex(),
        "cipher": "chacha20-poly1305",
        "nonce": nonce.hex(),
        "public_key": key.public_key.hex(),
        "address": key.address.hex(),
    }
    cipher = ChaCha20Poly1305(_kdf(password, salt, scrypt_n))
    doc["ciphertext"] = cipher.encrypt(nonce, key.seed_bytes(), _header_bytes(doc)).hex()
    doc["checksum"] = _checksum(doc)
    return json.dumps(doc, indent=2).encode() + b"\n"


def _corrupt(why: str) -> KeystoreError:
    return KeystoreError(
        "keystore-corrupt", f"the keystore is damaged ({why}); restore it from a backup"
    )


def _parse(blob: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as err:
        raise _corrupt("not JSON") from err
    if not isinstance(doc, dict):
        raise _corrupt("not a JSON object")
    missing = [k for k in (*_HEADER_FIELDS, "ciphertext", "checksum") if k not in doc]
    if missing:
        raise _corrupt(f"missing {', '.join(missing)}")
    if not isinstance(doc["ciphertext"], str) or doc["checksum"] != _checksum(doc):
        raise _corrupt("checksum mismatch")
    if doc["version"] != VERSION or doc["kdf"] != "scrypt" or doc["cipher"] != "chacha20-poly1305":
        raise KeystoreError(
            "keystore-unsupported",
            f"keystore version {doc['version']!r} ({doc['kdf']!r}, {doc['cipher']!r}) "
            "is not supported by this bcai",
        )
    n = doc["n"]
    if (
        not isinstance(n, int)
        or n < 2
        or n > MAX_SCRYPT_N
        or n & (n - 1)
        or doc["r"] != SCRYPT_R
        or doc["p"] != SCRYPT_P
    ):
        raise KeystoreError("keystore-unsupported", f"scrypt parameters n={n!r} are not supported")
    return doc


def decrypt_key(blob: bytes, password: str) -> PrivateKey:
    """The key held in a keystore document.

    Raises:
        KeystoreError: ``keystore-bad-password`` for a wrong password,
            ``keystore-corrupt`` for a damaged document,
            ``keystore-unsupported`` for an unknown version or parameters.
    """
    doc = _parse(blob)
    try:
        salt = bytes.fromhex(doc["salt"])
        nonce = bytes.fromhex(doc["nonce"])
        ciphertext = bytes.fromhex(doc["ciphertext"])
    except (TypeError, ValueError) as err:
        raise _corrupt("bad hex") from err
    cipher = ChaCha20Poly1305(_kdf(password, salt, doc["n"]))
    try:
        seed = cipher.decrypt(nonce, ciphertext, _header_bytes(doc))
    except InvalidTag as err:
        raise KeystoreError("keystore-bad-password", "wrong password for this keystore") from err
    key = PrivateKey(seed)
    if key.public_key.hex() != doc["public_key"] or address(key.public_key).hex() != doc["address"]:
        raise _corrupt("the key does not match its recorded public key")
    return key


def save_keystore(
    path: str | os.PathLike[str],
    key: PrivateKey,
    password: str,
    *,
    overwrite: bool = False,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> Path:
    """Writes `key` encrypted under `password` to `path` (mode 0600, atomically).

    Raises:
        KeystoreError: ``keystore-exists`` if `path` exists and not `overwrite`.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeystoreError("keystore-exists", f"{path} exists; refusing to overwrite a key")
    blob = encrypt_key(key, password, scrypt_n=scrypt_n)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_keystore(path: str | os.PathLike[str], password: str) -> PrivateKey:
    """Reads and decrypts a keystore file.

    Raises:
        KeystoreError: ``keystore-not-found``, ``keystore-insecure-permissions``
            (readable by group or others), or any `decrypt_key` code.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError as err:
        raise KeystoreError("keystore-not-found", f"no keystore at {path}") from err
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeystoreError(
            "keystore-insecure-permissions",
            f"{path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run: chmod 600 {path}",
        )
    if st.st_size > MAX_FILE_BYTES:
        raise _corrupt(f"{st.st_size} bytes is far too large for a keystore")
    return decrypt_key(path.read_bytes(), password)
