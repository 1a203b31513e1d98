//! Merkle trees of RFC 6962's shape with BLAKE3 as the hash.
//!
//! Shape (RFC 6962 §2.1): the root of `n > 1` leaves joins the root of the
//! first `k` leaves (the largest power of two below `n`) with the root of the
//! rest; a single leaf's root is its leaf hash; the empty tree's root is
//! BLAKE3 of the empty string. Built bottom-up, an unpaired last node is
//! carried up unchanged, which gives the same root.
//!
//! Domain separation: RFC 6962 prefixes 0x00 to leaves and 0x01 to nodes. Here
//! leaves and nodes are hashed in BLAKE3's keyed mode under two keys derived
//! from fixed context strings, so a node (two 32-byte children) is exactly one
//! 64-byte block: one compression instead of two.

use crate::blake3x8::{self, BLOCK_LEN, OUT_LEN};
use rayon::prelude::*;
use std::sync::OnceLock;

pub const LEAF_CONTEXT: &str = "bcai 2026-11 merkle leaf";
pub const NODE_CONTEXT: &str = "bcai 2026-11 merkle node";
/// Items per parallel task: large enough that rayon's overhead vanishes.
const TASK: usize = 4096;
/// Below this many hashes one thread is faster than two.
const PARALLEL_MIN: usize = 2 * TASK;

pub type Hash = [u8; OUT_LEN];

struct Keys {
    leaf: [u8; 32],
    node: [u8; 32],
    leaf_words: [u32; 8],
    node_words: [u32; 8],
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let leaf = blake3::derive_key(LEAF_CONTEXT, b"");
        let node = blake3::derive_key(NODE_CONTEXT, b"");
        Keys { leaf, node, leaf_words: blake3x8::key_words(&leaf), node_words: blake3x8::key_words(&node) }
    })
}

pub fn empty_root() -> Hash {
    *blake3::hash(b"").as_bytes()
}

pub fn leaf_hash(data: &[u8]) -> Hash {
    *blake3::keyed_hash(&keys().leaf, data).as_bytes()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut block = [0u8; BLOCK_LEN];
    block[..32].copy_from_slice(left);
    block[32..].copy_from_slice(right);
    *blake3::keyed_hash(&keys().node, &block).as_bytes()
}

/// Leaves laid out in one buffer: leaf `i` is `data[offsets[i]..offsets[i + 1]]`.
pub struct Leaves {
    pub data: Vec<u8>,
    pub offsets: Vec<usize>,
}

impl Leaves {
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[self.offsets[i]..self.offsets[i + 1]]
    }
    pub fn from_packed(data: Vec<u8>, leaf_size: usize) -> Leaves {
        let n = data.len() / leaf_size;
        Leaves { data, offsets: (0..=n).map(|i| i * leaf_size).collect() }
    }
}

fn hash_leaf_range(leaves: &Leaves, start: usize, out: &mut [u8]) {
    let n = out.len() / OUT_LEN;
    let short = (start..start + n).all(|i| leaves.get(i).len() <= BLOCK_LEN);
    if short {
        blake3x8::hash_many(&keys().leaf_words, n, |i| leaves.get(start + i), out);
    } else {
        for i in 0..n {
            out[i * OUT_LEN..(i + 1) * OUT_LEN].copy_from_slice(&leaf_hash(leaves.get(start + i)));
        }
    }
}

/// All leaf hashes, concatenated.
pub fn leaf_level(leaves: &Leaves) -> Vec<u8> {
    let n = leaves.len();
    let mut out = vec![0u8; n * OUT_LEN];
    if n < PARALLEL_MIN {
        hash_leaf_range(leaves, 0, &mut out);
    } else {
        out.par_chunks_mut(TASK * OUT_LEN)
            .enumerate()
            .for_each(|(c, o)| hash_leaf_range(leaves, c * TASK, o));
    }
    out
}

/// The level above `level` (both concatenated 32-byte hashes).
pub fn next_level(level: &[u8]) -> Vec<u8> {
    let n = level.len() / OUT_LEN;
    let pairs = n / 2;
    let mut out = vec![0u8; n.div_ceil(2) * OUT_LEN];
    let kw = &keys().node_words;
    let (paired, rest) = out.split_at_mut(pairs * OUT_LEN);
    let input = &level[..pairs * BLOCK_LEN];
    if pairs < PARALLEL_MIN {
        blake3x8::hash_pairs(kw, input, paired);
    } else {
        paired
            .par_chunks_mut(TASK * OUT_LEN)
            .zip(input.par_chunks(TASK * BLOCK_LEN))
            .for_each(|(o, i)| blake3x8::hash_pairs(kw, i, o));
    }
    if n % 2 == 1 {
        rest.copy_from_slice(&level[(n - 1) * OUT_LEN..]);
    }
    out
}

pub fn root_of_level(mut level: Vec<u8>) -> Hash {
    if level.is_empty() {
        return empty_root();
    }
    while level.len() > OUT_LEN {
        level = next_level(&level);
    }
    level.try_into().expect("one hash is left")
}

pub fn root(leaves: &Leaves) -> Hash {
    root_of_level(leaf_level(leaves))
}

/// RFC 6962 audit path for leaf `index`, deepest sibling first.
pub fn proof(leaves: &Leaves, index: usize) -> Vec<Hash> {
    assert!(index < leaves.len());
    let mut path = Vec::new();
    let mut level = leaf_level(leaves);
    let mut idx = index;
    while level.len() > OUT_LEN {
        let n = level.len() / OUT_LEN;
        let sibling = idx ^ 1;
        if sibling < n {
            path.push(level[sibling * OUT_LEN..(sibling + 1) * OUT_LEN].try_into().unwrap());
        }
        level = next_level(&level);
        idx /= 2;
    }
    path
}

/// RFC 9162 §2.1.3.2: checks that `leaf_hash` sits at `index` of a tree of
/// `size` leaves whose root is `root`.
pub fn verify(root: &Hash, leaf: &Hash, index: u64, size: u64, path: &[Hash]) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = 1usize << (usize::BITS - (n - 1).leading_zeros() - 1);
                node_hash(&reference(&leaves[..k]), &reference(&leaves[k..]))
            }
        }
    }

    fn make(n: usize, width: usize) -> (Vec<Vec<u8>>, Leaves) {
        let v: Vec<Vec<u8>> = (0..n).map(|i| (0..(width + i % 3)).map(|j| (i * 31 + j) as u8).collect()).collect();
        let mut data = Vec::new();
        let mut offsets = vec![0];
        for l in &v {
            data.extend_from_slice(l);
            offsets.push(data.len());
        }
        (v, Leaves { data, offsets })
    }

    #[test]
    fn root_matches_rfc6962_recursion() {
        for n in (0..40).chain([255, 256, 257, 9000, 20001]) {
            for width in [0usize, 32, 70] {
                let (v, l) = make(n, width);
                assert_eq!(root(&l), reference(&v), "n={n} width={width}");
            }
        }
    }

    #[test]
    fn every_proof_verifies_and_tampering_fails() {
        for n in 1..34usize {
            let (_, l) = make(n, 32);
            let r = root(&l);
            for i in 0..n {
                let p = proof(&l, i);
                let h = leaf_hash(l.get(i));
                assert!(verify(&r, &h, i as u64, n as u64, &p), "n={n} i={i}");
                assert!(!verify(&r, &h, i as u64, i as u64, &p), "index beyond size");
                if n > 1 {
                    assert!(!verify(&r, &h, ((i + 1) % n) as u64, n as u64, &p));
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify(&r, &h, i as u64, n as u64, &bad));
                }
            }
        }
    }
}
