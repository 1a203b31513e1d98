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
use std::cell::RefCell;
use std::sync::OnceLock;

pub const LEAF_CONTEXT: &str = "bcai 2026-11 merkle leaf";
pub const NODE_CONTEXT: &str = "bcai 2026-11 merkle node";
/// Items per parallel task: large enough that rayon's overhead vanishes.
pub const TASK: usize = 4096;
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
        Keys {
            leaf,
            node,
            leaf_words: blake3x8::key_words(&leaf),
            node_words: blake3x8::key_words(&node),
        }
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

/// Where leaf bytes come from: equal-size leaves packed back to back, or
/// leaves of any size with offsets (leaf `i` is `data[offsets[i]..offsets[i + 1]]`).
#[derive(Clone, Copy)]
pub enum LeafSource<'a> {
    Packed {
        data: &'a [u8],
        size: usize,
    },
    Ragged {
        data: &'a [u8],
        offsets: &'a [usize],
    },
    /// Leaves borrowed where they lie (a Python list's bytes objects).
    Slices(&'a [&'a [u8]]),
}

impl<'a> LeafSource<'a> {
    pub fn len(&self) -> usize {
        match self {
            LeafSource::Packed { data, size } => data.len() / size,
            LeafSource::Ragged { offsets, .. } => offsets.len() - 1,
            LeafSource::Slices(s) => s.len(),
        }
    }
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        match *self {
            LeafSource::Packed { data, size } => &data[i * size..(i + 1) * size],
            LeafSource::Ragged { data, offsets } => &data[offsets[i]..offsets[i + 1]],
            LeafSource::Slices(s) => s[i],
        }
    }
    fn all_short(&self, start: usize, end: usize) -> bool {
        match self {
            LeafSource::Packed { size, .. } => *size <= BLOCK_LEN,
            _ => (start..end).all(|i| self.get(i).len() <= BLOCK_LEN),
        }
    }
}

/// Leaves copied out of Python objects into one buffer.
pub struct Leaves {
    pub data: Vec<u8>,
    pub offsets: Vec<usize>,
}

impl Leaves {
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    #[cfg(test)]
    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[self.offsets[i]..self.offsets[i + 1]]
    }
    /// Packed when every leaf has the same non-zero size (no offset lookups).
    pub fn source(&self) -> LeafSource<'_> {
        let n = self.len();
        if n > 0 {
            let size = self.offsets[1];
            if size > 0
                && self.data.len() == n * size
                && self.offsets.windows(2).all(|w| w[1] - w[0] == size)
            {
                return LeafSource::Packed {
                    data: &self.data,
                    size,
                };
            }
        }
        LeafSource::Ragged {
            data: &self.data,
            offsets: &self.offsets,
        }
    }
}

fn hash_leaf_range(leaves: LeafSource<'_>, start: usize, out: &mut [u8]) {
    let n = out.len() / OUT_LEN;
    if leaves.all_short(start, start + n) {
        blake3x8::hash_many(&keys().leaf_words, n, |i| leaves.get(start + i), out);
    } else {
        for i in 0..n {
            out[i * OUT_LEN..(i + 1) * OUT_LEN].copy_from_slice(&leaf_hash(leaves.get(start + i)));
        }
    }
}

/// All leaf hashes, concatenated.
pub fn leaf_level(leaves: LeafSource<'_>) -> Vec<u8> {
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

thread_local! {
    /// Two ping-pong buffers of TASK hashes, reused so that a large tree
    /// touches no fresh memory (page faults cost more than the hashing).
    static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> =
        RefCell::new((vec![0u8; TASK * OUT_LEN], vec![0u8; TASK * OUT_LEN]));
}

/// Root of leaves `start..end` (at most TASK of them), computed in cache.
pub fn subtree_root(leaves: LeafSource<'_>, start: usize, end: usize) -> Hash {
    SCRATCH.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let (a, b) = &mut *bufs;
        let mut len = end - start;
        hash_leaf_range(leaves, start, &mut a[..len * OUT_LEN]);
        let kw = &keys().node_words;
        while len > 1 {
            let pairs = len / 2;
            blake3x8::hash_pairs(kw, &a[..pairs * BLOCK_LEN], &mut b[..pairs * OUT_LEN]);
            if len % 2 == 1 {
                b[pairs * OUT_LEN..(pairs + 1) * OUT_LEN]
                    .copy_from_slice(&a[(len - 1) * OUT_LEN..len * OUT_LEN]);
            }
            std::mem::swap(a, b);
            len = len.div_ceil(2);
        }
        a[..OUT_LEN].try_into().expect("one hash")
    })
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

/// The root, from aligned TASK-leaf subtrees hashed in parallel and in cache.
/// Aligned power-of-two subtrees are exactly RFC 6962's inner nodes, so the
/// roots of the chunks combine (bottom-up, odd one carried) into the root.
pub fn root(leaves: LeafSource<'_>) -> Hash {
    let n = leaves.len();
    if n == 0 {
        return empty_root();
    }
    let chunk = |c: usize| subtree_root(leaves, c * TASK, n.min((c + 1) * TASK));
    let chunks = n.div_ceil(TASK);
    let roots: Vec<Hash> = if chunks == 1 {
        vec![chunk(0)]
    } else {
        (0..chunks).into_par_iter().map(chunk).collect()
    };
    root_of_level(roots.concat())
}

/// RFC 6962 audit path for leaf `index`, deepest sibling first.
pub fn proof(leaves: LeafSource<'_>, index: usize) -> Vec<Hash> {
    assert!(index < leaves.len());
    let mut path = Vec::new();
    let mut level = leaf_level(leaves);
    let mut idx = index;
    while level.len() > OUT_LEN {
        let n = level.len() / OUT_LEN;
        let sibling = idx ^ 1;
        if sibling < n {
            path.push(
                level[sibling * OUT_LEN..(sibling + 1) * OUT_LEN]
                    .try_into()
                    .unwrap(),
            );
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
        let v: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                (0..(width + i % 3 * usize::from(width != 32)))
                    .map(|j| (i * 31 + j) as u8)
                    .collect()
            })
            .collect();
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
                assert_eq!(root(l.source()), reference(&v), "n={n} width={width}");
                assert_eq!(root_of_level(leaf_level(l.source())), reference(&v));
            }
        }
    }

    #[test]
    fn every_proof_verifies_and_tampering_fails() {
        for n in 1..34usize {
            let (_, l) = make(n, 32);
            let r = root(l.source());
            for i in 0..n {
                let p = proof(l.source(), i);
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
