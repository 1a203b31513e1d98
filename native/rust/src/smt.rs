//! A sparse Merkle tree over 256-bit keys (the chain's state commitment).
//!
//! Canonical compact form: an empty subtree is the all-zero hash, a subtree
//! holding exactly one leaf *is* that leaf (placed as high as it can go), and
//! any other subtree is an internal node. The root therefore depends only on
//! the set of (key, value hash) pairs, never on the order of updates.
//!
//! leaf = BLAKE3-keyed(K_leaf, key ‖ value_hash)
//! node = BLAKE3-keyed(K_node, left ‖ right)
//! with K_* = derive_key("bcai 2026-11 smt leaf" / "… node", "").
//!
//! Nodes are kept by hash and never mutated, so every earlier root stays
//! readable (a reorg just returns to an older root).

use crate::blake3x8::{self, key_words};
use std::collections::HashMap;
use std::sync::OnceLock;

pub type Hash = [u8; 32];
pub const EMPTY: Hash = [0u8; 32];
pub const LEAF_CONTEXT: &str = "bcai 2026-11 smt leaf";
pub const NODE_CONTEXT: &str = "bcai 2026-11 smt node";
pub const MAX_DEPTH: usize = 256;

fn words() -> &'static ([u32; 8], [u32; 8]) {
    static W: OnceLock<([u32; 8], [u32; 8])> = OnceLock::new();
    W.get_or_init(|| {
        (
            key_words(&blake3::derive_key(LEAF_CONTEXT, b"")),
            key_words(&blake3::derive_key(NODE_CONTEXT, b"")),
        )
    })
}

fn hash64(kw: &[u32; 8], a: &Hash, b: &Hash) -> Hash {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(a);
    block[32..].copy_from_slice(b);
    blake3x8::hash_one(kw, &block)
}

pub fn leaf_hash(key: &Hash, value_hash: &Hash) -> Hash {
    hash64(&words().0, key, value_hash)
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    hash64(&words().1, left, right)
}

#[inline]
pub fn bit(key: &Hash, depth: usize) -> bool {
    key[depth / 8] >> (7 - depth % 8) & 1 == 1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    Leaf { key: Hash, value: Hash },
    Internal { left: Hash, right: Hash },
}

impl Node {
    /// Encoding for storage: 0x00 ‖ key ‖ value, or 0x01 ‖ left ‖ right.
    pub fn encode(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        let (tag, a, b) = match self {
            Node::Leaf { key, value } => (0, key, value),
            Node::Internal { left, right } => (1, left, right),
        };
        out[0] = tag;
        out[1..33].copy_from_slice(a);
        out[33..].copy_from_slice(b);
        out
    }
    pub fn decode(data: &[u8]) -> Option<Node> {
        if data.len() != 65 {
            return None;
        }
        let a: Hash = data[1..33].try_into().ok()?;
        let b: Hash = data[33..].try_into().ok()?;
        match data[0] {
            0 => Some(Node::Leaf { key: a, value: b }),
            1 => Some(Node::Internal { left: a, right: b }),
            _ => None,
        }
    }
    pub fn hash(&self) -> Hash {
        match self {
            Node::Leaf { key, value } => leaf_hash(key, value),
            Node::Internal { left, right } => node_hash(left, right),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum SmtError {
    MissingNode(Hash),
    DuplicateKey(Hash),
}

/// One update: set `key` to `Some(value_hash)` or delete it (`None`).
pub type Update = (Hash, Option<Hash>);

#[derive(Default)]
pub struct Tree {
    nodes: HashMap<Hash, Node>,
    /// Nodes created since the last `drain_new`, for the store to persist.
    fresh: Vec<Hash>,
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Proof {
    pub siblings: Vec<Hash>,
    /// The leaf where the walk ended (None: an empty subtree).
    pub terminal: Option<(Hash, Hash)>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    pub fn len_nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn insert_node(&mut self, node: Node) -> Hash {
        let h = node.hash();
        if self.nodes.insert(h, node).is_none() {
            self.fresh.push(h);
        }
        h
    }

    pub fn load_node(&mut self, node: Node) -> Hash {
        let h = node.hash();
        self.nodes.insert(h, node);
        h
    }

    pub fn node(&self, h: &Hash) -> Result<Option<Node>, SmtError> {
        if *h == EMPTY {
            return Ok(None);
        }
        self.nodes
            .get(h)
            .copied()
            .map(Some)
            .ok_or(SmtError::MissingNode(*h))
    }

    pub fn drain_new(&mut self) -> Vec<(Hash, Node)> {
        let fresh = std::mem::take(&mut self.fresh);
        fresh
            .into_iter()
            .filter_map(|h| self.nodes.get(&h).map(|n| (h, *n)))
            .collect()
    }

    fn is_leaf(&self, h: &Hash) -> bool {
        matches!(self.nodes.get(h), Some(Node::Leaf { .. }))
    }

    /// Joins two child subtrees in canonical form.
    fn join(&mut self, left: Hash, right: Hash) -> Hash {
        if left == EMPTY && (right == EMPTY || self.is_leaf(&right)) {
            return right;
        }
        if right == EMPTY && self.is_leaf(&left) {
            return left;
        }
        self.insert_node(Node::Internal { left, right })
    }

    /// Builds the subtree at `depth` holding exactly `leaves` (sorted by key).
    fn build(&mut self, depth: usize, leaves: &[(Hash, Hash)]) -> Hash {
        match leaves.len() {
            0 => EMPTY,
            1 => self.insert_node(Node::Leaf {
                key: leaves[0].0,
                value: leaves[0].1,
            }),
            _ => {
                let split = leaves.partition_point(|(k, _)| !bit(k, depth));
                let l = self.build(depth + 1, &leaves[..split]);
                let r = self.build(depth + 1, &leaves[split..]);
                self.join(l, r)
            }
        }
    }

    /// Applies `updates` (sorted by key, no duplicates) to the subtree `root`
    /// at `depth`; returns the new subtree's hash.
    fn apply(&mut self, root: Hash, depth: usize, updates: &[Update]) -> Result<Hash, SmtError> {
        if updates.is_empty() {
            return Ok(root);
        }
        match self.node(&root)? {
            None => {
                let leaves: Vec<(Hash, Hash)> = updates
                    .iter()
                    .filter_map(|(k, v)| v.map(|v| (*k, v)))
                    .collect();
                Ok(self.build(depth, &leaves))
            }
            Some(Node::Leaf { key, value }) => {
                let mut leaves: Vec<(Hash, Hash)> = Vec::with_capacity(updates.len() + 1);
                let mut replaced = false;
                for (k, v) in updates {
                    if *k == key {
                        replaced = true;
                    }
                    if let Some(v) = v {
                        leaves.push((*k, *v));
                    }
                }
                if !replaced {
                    let at = leaves.partition_point(|(k, _)| *k < key);
                    leaves.insert(at, (key, value));
                }
                Ok(self.build(depth, &leaves))
            }
            Some(Node::Internal { left, right }) => {
                let split = updates.partition_point(|(k, _)| !bit(k, depth));
                let l = self.apply(left, depth + 1, &updates[..split])?;
                let r = self.apply(right, depth + 1, &updates[split..])?;
                Ok(self.join(l, r))
            }
        }
    }

    /// The root after applying `updates` (any order; a key may appear once).
    pub fn update(&mut self, root: Hash, mut updates: Vec<Update>) -> Result<Hash, SmtError> {
        updates.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = updates.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(SmtError::DuplicateKey(w[0].0));
        }
        self.apply(root, 0, &updates)
    }

    /// The value hash stored under `key`, if any.
    pub fn get(&self, root: Hash, key: &Hash) -> Result<Option<Hash>, SmtError> {
        let p = self.prove(root, key)?;
        Ok(p.terminal.filter(|(k, _)| k == key).map(|(_, v)| v))
    }

    pub fn prove(&self, root: Hash, key: &Hash) -> Result<Proof, SmtError> {
        let mut siblings = Vec::new();
        let mut h = root;
        let mut depth = 0;
        loop {
            match self.node(&h)? {
                None => {
                    return Ok(Proof {
                        siblings,
                        terminal: None,
                    })
                }
                Some(Node::Leaf { key: k, value }) => {
                    return Ok(Proof {
                        siblings,
                        terminal: Some((k, value)),
                    })
                }
                Some(Node::Internal { left, right }) => {
                    if bit(key, depth) {
                        siblings.push(left);
                        h = right;
                    } else {
                        siblings.push(right);
                        h = left;
                    }
                    depth += 1;
                }
            }
        }
    }
}

/// Checks that `key` holds `value_hash` (or is absent, for `None`) in the
/// tree with `root`. Pure: needs only the proof.
pub fn verify(root: &Hash, key: &Hash, value_hash: Option<&Hash>, proof: &Proof) -> bool {
    let depth = proof.siblings.len();
    if depth > MAX_DEPTH {
        return false;
    }
    let mut h = match (value_hash, &proof.terminal) {
        (Some(v), Some((k, tv))) if k == key && tv == v => leaf_hash(key, v),
        (None, None) => EMPTY,
        (None, Some((k, tv))) if k != key && (0..depth).all(|d| bit(k, d) == bit(key, d)) => {
            leaf_hash(k, tv)
        }
        _ => return false,
    };
    for d in (0..depth).rev() {
        let s = &proof.siblings[d];
        h = if bit(key, d) {
            node_hash(s, &h)
        } else {
            node_hash(&h, s)
        };
    }
    h == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u32) -> Hash {
        *blake3::hash(&i.to_be_bytes()).as_bytes()
    }

    #[test]
    fn root_is_independent_of_order_and_history() {
        let mut t = Tree::new();
        let all: Vec<Update> = (0..500).map(|i| (k(i), Some(k(i + 1000)))).collect();
        let one_shot = t.update(EMPTY, all.clone()).unwrap();
        let mut r = EMPTY;
        for chunk in all.chunks(37).rev() {
            r = t.update(r, chunk.to_vec()).unwrap();
        }
        assert_eq!(r, one_shot);
        // insert then delete 100 extra keys: back to the same root
        let extra: Vec<Update> = (600..700).map(|i| (k(i), Some(k(i)))).collect();
        let r2 = t.update(r, extra.clone()).unwrap();
        assert_ne!(r2, r);
        let del: Vec<Update> = extra.iter().map(|(key, _)| (*key, None)).collect();
        assert_eq!(t.update(r2, del).unwrap(), r);
        // deleting everything gives the empty tree
        let del_all: Vec<Update> = all.iter().map(|(key, _)| (*key, None)).collect();
        assert_eq!(t.update(r, del_all).unwrap(), EMPTY);
    }

    #[test]
    fn proofs_of_presence_and_absence() {
        let mut t = Tree::new();
        let r = t
            .update(EMPTY, (0..300).map(|i| (k(i), Some(k(i + 7)))).collect())
            .unwrap();
        for i in 0..300 {
            let p = t.prove(r, &k(i)).unwrap();
            assert!(verify(&r, &k(i), Some(&k(i + 7)), &p));
            assert!(!verify(&r, &k(i), Some(&k(i + 8)), &p));
            assert!(!verify(&r, &k(i), None, &p));
        }
        for i in 300..400 {
            let p = t.prove(r, &k(i)).unwrap();
            assert!(verify(&r, &k(i), None, &p));
            assert!(!verify(&r, &k(i), Some(&k(1)), &p));
        }
        assert_eq!(t.get(r, &k(5)).unwrap(), Some(k(12)));
        assert_eq!(t.get(r, &k(305)).unwrap(), None);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let mut t = Tree::new();
        let e = t.update(EMPTY, vec![(k(1), Some(k(1))), (k(1), None)]);
        assert_eq!(e, Err(SmtError::DuplicateKey(k(1))));
    }
}
