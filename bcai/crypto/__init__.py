"""bcai.crypto: hashing, Merkle trees, Ed25519 keys and signatures (ZIP-215),
addresses, and encrypted keystores — thin over the native core.

Layer: foundation. Everything here is pure except `save_keystore` and
`load_keystore`, which read and write the one file they are given.
"""

from bcai.crypto._hash import (
    Blake3,
    blake3,
    blake3_keyed,
    blake3_xof,
    derive_key,
    merkle_leaf_hash,
    merkle_node_hash,
    merkle_proof,
    merkle_root,
    merkle_root_packed,
    merkle_verify,
    sha256,
)
from bcai.crypto._keys import (
    ADDRESS_SIZE,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    PrivateKey,
    address,
    verify,
    verify_batch,
)
from bcai.crypto._keystore import (
    KeystoreError,
    decrypt_key,
    encrypt_key,
    load_keystore,
    save_keystore,
)

__all__ = [
    "ADDRESS_SIZE",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "Blake3",
    "KeystoreError",
    "PrivateKey",
    "address",
    "blake3",
    "blake3_keyed",
    "blake3_xof",
    "decrypt_key",
    "derive_key",
    "encrypt_key",
    "load_keystore",
    "merkle_leaf_hash",
    "merkle_node_hash",
    "merkle_proof",
    "merkle_root",
    "merkle_root_packed",
    "merkle_verify",
    "save_keystore",
    "sha256",
    "verify",
    "verify_batch",
]
