//! Ed25519 under ZIP-215 (via `ed25519-zebra`): single and batch verification
//! accept exactly the same signatures, because both use the cofactored
//! equation [8][S]B = [8]R + [8][k]A, accept non-canonical encodings of A and
//! R, and require S < L.
//!
//! Batch verification draws its random coefficients from ChaCha20 seeded with
//! a BLAKE3 hash of the whole batch, so the answer is a pure function of the
//! input: a forger cannot pick signatures after seeing the coefficients.

use ed25519_zebra::{batch, Signature, SigningKey, VerificationKey, VerificationKeyBytes};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rayon::prelude::*;

pub const BATCH_CONTEXT: &str = "bcai 2026-11 ed25519 batch coefficients";

pub struct Item {
    pub public_key: [u8; 32],
    pub message: Vec<u8>,
    pub signature: [u8; 64],
}

pub fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    let sk = SigningKey::from(*seed);
    VerificationKeyBytes::from(VerificationKey::from(&sk)).into()
}

pub fn sign(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    SigningKey::from(*seed).sign(message).to_bytes()
}

pub fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let sig = Signature::from_bytes(signature);
    match VerificationKey::try_from(VerificationKeyBytes::from(*public_key)) {
        Ok(vk) => vk.verify(&sig, message).is_ok(),
        Err(_) => false,
    }
}

fn batch_seed(items: &[Item]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(BATCH_CONTEXT);
    h.update(&(items.len() as u64).to_be_bytes());
    for it in items {
        h.update(&it.public_key);
        h.update(&it.signature);
        h.update(blake3::hash(&it.message).as_bytes());
    }
    *h.finalize().as_bytes()
}

fn verify_chunk(items: &[Item]) -> Vec<bool> {
    let mut verifier = batch::Verifier::new();
    for it in items {
        let sig = Signature::from_bytes(&it.signature);
        verifier.queue((VerificationKeyBytes::from(it.public_key), sig, &it.message));
    }
    let rng = ChaCha20Rng::from_seed(batch_seed(items));
    if verifier.verify(rng).is_ok() {
        vec![true; items.len()]
    } else {
        // Some item is bad: find which, one by one (in parallel).
        items
            .par_iter()
            .map(|it| verify(&it.public_key, &it.message, &it.signature))
            .collect()
    }
}

/// Verifies every item; `result[i]` tells whether item `i` is valid.
/// Large batches are split into one sub-batch per core.
pub fn verify_batch(items: &[Item]) -> Vec<bool> {
    if items.is_empty() {
        return Vec::new();
    }
    let threads = rayon::current_num_threads().max(1);
    let per = items.len().div_ceil(threads).max(64);
    items.par_chunks(per).flat_map_iter(verify_chunk).collect()
}

pub fn random_seed() -> Result<[u8; 32], getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| {
                let seed = *blake3::hash(&(i as u64).to_le_bytes()).as_bytes();
                let message = format!("message {i}").into_bytes();
                Item {
                    public_key: public_key(&seed),
                    signature: sign(&seed, &message),
                    message,
                }
            })
            .collect()
    }

    #[test]
    fn sign_then_verify() {
        let it = &items(1)[0];
        assert!(verify(&it.public_key, &it.message, &it.signature));
        assert!(!verify(&it.public_key, b"other", &it.signature));
    }

    #[test]
    fn batch_names_the_bad_items() {
        let mut v = items(300);
        v[5].message.push(0);
        v[200].signature[10] ^= 1;
        let r = verify_batch(&v);
        for (i, ok) in r.iter().enumerate() {
            assert_eq!(*ok, i != 5 && i != 200, "item {i}");
        }
        assert_eq!(verify_batch(&items(300)), vec![true; 300]);
    }

    #[test]
    fn rfc8032_test_1() {
        // RFC 8032 §7.1 TEST 1 (empty message).
        let seed: [u8; 32] =
            hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let pk: [u8; 32] = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert_eq!(public_key(&seed), pk);
        let sig = sign(&seed, b"");
        assert_eq!(
            sig.to_vec(),
            hex::<64>("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b").to_vec()
        );
    }

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for i in 0..N {
            out[i] = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
