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

use crate::arena::Arena;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// Node keys are BLAKE3 outputs: their first 8 bytes are already a uniform
/// hash, so SipHash would only cost time.
#[derive(Default)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // [u8; 32] hashes as its length (usize) then its bytes; keep the bytes.
        if bytes.len() >= 8 {
            self.0 = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        }
    }
}

pub type Hash = [u8; 32];
pub const EMPTY: Hash = [0u8; 32];
pub const LEAF_CONTEXT: &str = "bcai 2026-11 smt leaf";
pub const NODE_CONTEXT: &str = "bcai 2026-11 smt node";
pub const MAX_DEPTH: usize = 256;

/// What a subtree is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Empty,
    Leaf,
    Internal,
}

/// A reference to a node: in the arena (`Old`), or among the nodes an update
/// is creating (`New`, an index into its output, fixed up when committed).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Link {
    Empty,
    Old(u32),
    New(u32),
}

#[derive(Clone, Copy, Debug)]
enum ANode {
    /// Key ‖ value live apart (`Tree::leaves`), so that every arena entry
    /// stays small: fewer fresh pages per update.
    Leaf {
        data: u32,
    },
    Internal {
        left: Link,
        right: Link,
    },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    hash: Hash,
    node: ANode,
}

/// A node an update is creating, with the 64-byte block its hash is taken
/// over: key ‖ value for a leaf, the children's hashes for an internal node
/// (those of existing children filled in at once, new ones by `hash_new`).
#[derive(Clone, Copy, Debug)]
struct NewEntry {
    entry: Entry,
    block: [u8; 64],
}

/// A subtree as the recursion sees it: its hash, kind and where it lives.
#[derive(Clone, Copy, Debug)]
struct Sub {
    hash: Hash,
    kind: Kind,
    link: Link,
}

const EMPTY_SUB: Sub = Sub {
    hash: EMPTY,
    kind: Kind::Empty,
    link: Link::Empty,
};
/// Updates above this many are split between two threads at the top levels.
const PARALLEL_UPDATES: usize = 256;
const PARALLEL_DEPTH: usize = 4;

fn shift(link: Link, offset: u32) -> Link {
    match link {
        Link::New(i) => Link::New(i + offset),
        other => other,
    }
}

/// Renumbers the nodes a second thread created so they can follow `offset`
/// nodes of the first thread's output.
fn rebase(entries: &mut [NewEntry], sub: &mut Sub, offset: u32) {
    for e in entries.iter_mut() {
        if let ANode::Internal { left, right } = &mut e.entry.node {
            *left = shift(*left, offset);
            *right = shift(*right, offset);
        }
    }
    sub.link = shift(sub.link, offset);
}

fn key_words_pair() -> &'static ([u32; 8], [u32; 8]) {
    static W: OnceLock<([u32; 8], [u32; 8])> = OnceLock::new();
    W.get_or_init(|| {
        let (l, n) = keys();
        (crate::blake3x8::key_words(l), crate::blake3x8::key_words(n))
    })
}

fn kv_block(key: &Hash, value: &Hash) -> [u8; 64] {
    let mut b = [0u8; 64];
    b[..32].copy_from_slice(key);
    b[32..].copy_from_slice(value);
    b
}

/// The leaf and node keys. One hash at a time, the `blake3` crate's SIMD
/// compression is about twice as fast as the portable one in blake3x8.
fn keys() -> &'static (Hash, Hash) {
    static K: OnceLock<(Hash, Hash)> = OnceLock::new();
    K.get_or_init(|| {
        (
            blake3::derive_key(LEAF_CONTEXT, b""),
            blake3::derive_key(NODE_CONTEXT, b""),
        )
    })
}

fn hash64(key: &Hash, a: &Hash, b: &Hash) -> Hash {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(a);
    block[32..].copy_from_slice(b);
    *blake3::keyed_hash(key, &block).as_bytes()
}

pub fn leaf_hash(key: &Hash, value_hash: &Hash) -> Hash {
    hash64(&keys().0, key, value_hash)
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    hash64(&keys().1, left, right)
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

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Proof {
    pub siblings: Vec<Hash>,
    /// The leaf where the walk ended (None: an empty subtree).
    pub terminal: Option<(Hash, Hash)>,
}

/// The tree's nodes live in an append-only arena and point to their children
/// by index, so walking down is one memory access per level and a new node
/// is a push; only roots (and nodes loaded from storage) are looked up by
/// hash. Nothing is ever removed, so every root produced stays readable.
#[derive(Default)]
pub struct Tree {
    arena: Arena<Entry>,
    /// Key ‖ value of every leaf in the arena.
    leaves: Arena<[u8; 64]>,
    by_hash: HashMap<Hash, u32, BuildHasherDefault<PrefixHasher>>,
    /// Stored nodes loaded but not yet placed in the arena.
    pending: HashMap<Hash, Node, BuildHasherDefault<PrefixHasher>>,
    /// Arena indices of nodes created since the last `drain_new`.
    fresh: Vec<u32>,
    /// Buffers kept between updates: on this kind of VM a fresh page costs
    /// about 4 µs to fault in, more than hashing the nodes that fill it.
    scratch: Scratch,
}

#[derive(Default)]
struct Scratch {
    out: Vec<NewEntry>,
    blocks: Vec<u8>,
    hashes: Vec<u8>,
}

thread_local! {
    /// The second thread's output buffer in `both`, kept for the same reason.
    static RIGHT_OUT: std::cell::RefCell<Vec<NewEntry>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    pub fn len_nodes(&self) -> usize {
        self.arena.len() + self.pending.len()
    }

    /// Makes a stored node (and, later, its subtree) available.
    pub fn load_node(&mut self, node: Node) -> Hash {
        let h = node.hash();
        if !self.by_hash.contains_key(&h) {
            self.pending.insert(h, node);
        }
        h
    }

    fn leaf_kv(&self, data: u32) -> (Hash, Hash) {
        let b = self.leaves.get(data);
        (b[..32].try_into().unwrap(), b[32..].try_into().unwrap())
    }

    fn hash_of(&self, link: Link) -> Hash {
        match link {
            Link::Empty => EMPTY,
            Link::Old(i) => self.arena.get(i).hash,
            Link::New(_) => unreachable!("the arena holds no uncommitted links"),
        }
    }

    #[inline]
    fn prefetch(&self, link: Link) {
        if let Link::Old(i) = link {
            self.arena.prefetch(i);
        }
    }

    fn old_sub(&self, link: Link) -> Sub {
        match link {
            Link::Old(i) => {
                let e = self.arena.get(i);
                let kind = match e.node {
                    ANode::Leaf { .. } => Kind::Leaf,
                    ANode::Internal { .. } => Kind::Internal,
                };
                Sub {
                    hash: e.hash,
                    kind,
                    link,
                }
            }
            _ => EMPTY_SUB,
        }
    }

    /// The arena index of the node with hash `h`, placing stored nodes first.
    fn materialize(&mut self, h: &Hash) -> Result<u32, SmtError> {
        if let Some(&i) = self.by_hash.get(h) {
            return Ok(i);
        }
        let node = self.pending.remove(h).ok_or(SmtError::MissingNode(*h))?;
        let anode = match node {
            Node::Leaf { key, value } => ANode::Leaf {
                data: self.leaves.push(kv_block(&key, &value)),
            },
            Node::Internal { left, right } => {
                let l = if left == EMPTY {
                    Link::Empty
                } else {
                    Link::Old(self.materialize(&left)?)
                };
                let r = if right == EMPTY {
                    Link::Empty
                } else {
                    Link::Old(self.materialize(&right)?)
                };
                ANode::Internal { left: l, right: r }
            }
        };
        let i = self.arena.len() as u32;
        self.arena.push(Entry {
            hash: *h,
            node: anode,
        });
        self.by_hash.insert(*h, i);
        Ok(i)
    }

    fn resolve(&mut self, root: &Hash) -> Result<Sub, SmtError> {
        if *root == EMPTY {
            return Ok(EMPTY_SUB);
        }
        let i = self.materialize(root)?;
        Ok(self.old_sub(Link::Old(i)))
    }

    pub fn drain_new(&mut self) -> Vec<(Hash, Node)> {
        let fresh = std::mem::take(&mut self.fresh);
        fresh
            .into_iter()
            .map(|i| {
                let e = *self.arena.get(i);
                let node = match e.node {
                    ANode::Leaf { data } => {
                        let (key, value) = self.leaf_kv(data);
                        Node::Leaf { key, value }
                    }
                    ANode::Internal { left, right } => Node::Internal {
                        left: self.hash_of(left),
                        right: self.hash_of(right),
                    },
                };
                (e.hash, node)
            })
            .collect()
    }

    /// A new leaf. Its hash (like every new node's) is filled in later by
    /// `hash_new`, eight at a time; the recursion needs only kinds.
    fn leaf(key: Hash, value: Hash, out: &mut Vec<NewEntry>) -> Sub {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&key);
        block[32..].copy_from_slice(&value);
        out.push(NewEntry {
            entry: Entry {
                hash: EMPTY,
                node: ANode::Leaf { data: u32::MAX }, // set when committed
            },
            block,
        });
        Sub {
            hash: EMPTY,
            kind: Kind::Leaf,
            link: Link::New(out.len() as u32 - 1),
        }
    }

    /// Joins two child subtrees in canonical form; new nodes go to `out`.
    fn join(left: Sub, right: Sub, out: &mut Vec<NewEntry>) -> Sub {
        match (left.kind, right.kind) {
            (Kind::Empty, Kind::Empty) => EMPTY_SUB,
            (Kind::Empty, Kind::Leaf) => right,
            (Kind::Leaf, Kind::Empty) => left,
            _ => {
                // Known hashes now (existing or empty children); new ones later.
                let mut block = [0u8; 64];
                block[..32].copy_from_slice(&left.hash);
                block[32..].copy_from_slice(&right.hash);
                out.push(NewEntry {
                    entry: Entry {
                        hash: EMPTY,
                        node: ANode::Internal {
                            left: left.link,
                            right: right.link,
                        },
                    },
                    block,
                });
                Sub {
                    hash: EMPTY,
                    kind: Kind::Internal,
                    link: Link::New(out.len() as u32 - 1),
                }
            }
        }
    }

    /// Runs `f` on both halves (false: left, true: right), on two threads
    /// when asked, and renumbers the right half's new nodes after the left's.
    fn both<F>(parallel: bool, out: &mut Vec<NewEntry>, f: F) -> (Sub, Sub)
    where
        F: Fn(bool, &mut Vec<NewEntry>) -> Sub + Sync,
    {
        if !parallel {
            let l = f(false, out);
            let r = f(true, out);
            return (l, r);
        }
        let (l, (mut r, mut right_out)) = rayon::join(
            || f(false, out),
            || {
                let mut right_out = RIGHT_OUT.with(|c| std::mem::take(&mut *c.borrow_mut()));
                right_out.clear();
                (f(true, &mut right_out), right_out)
            },
        );
        rebase(&mut right_out, &mut r, out.len() as u32);
        out.extend_from_slice(&right_out);
        right_out.clear();
        RIGHT_OUT.with(|c| *c.borrow_mut() = right_out);
        (l, r)
    }

    /// The subtree at `depth` holding exactly `leaves` (sorted by key).
    fn build(depth: usize, leaves: &[(Hash, Hash)], out: &mut Vec<NewEntry>) -> Sub {
        match leaves.len() {
            0 => EMPTY_SUB,
            1 => Tree::leaf(leaves[0].0, leaves[0].1, out),
            n => {
                let split = leaves.partition_point(|(k, _)| !bit(k, depth));
                let parallel = n >= 4 * PARALLEL_UPDATES && depth < PARALLEL_DEPTH;
                let (l, r) = Tree::both(parallel, out, |right, o| {
                    let part = if right {
                        &leaves[split..]
                    } else {
                        &leaves[..split]
                    };
                    Tree::build(depth + 1, part, o)
                });
                Tree::join(l, r, out)
            }
        }
    }

    /// Applies `updates` (sorted by key, no duplicates) to the subtree `sub`
    /// at `depth`, reading the arena only; new nodes go to `out`.
    fn apply(&self, sub: Sub, depth: usize, updates: &[Update], out: &mut Vec<NewEntry>) -> Sub {
        if updates.is_empty() {
            return sub;
        }
        let Link::Old(i) = sub.link else {
            let leaves: Vec<(Hash, Hash)> = updates
                .iter()
                .filter_map(|(k, v)| v.map(|v| (*k, v)))
                .collect();
            return Tree::build(depth, &leaves, out);
        };
        match self.arena.get(i).node {
            ANode::Leaf { data } => {
                let (key, value) = self.leaf_kv(data);
                let mut leaves: Vec<(Hash, Hash)> = Vec::with_capacity(updates.len() + 1);
                let mut replaced = false;
                for (k, v) in updates {
                    replaced |= *k == key;
                    if let Some(v) = v {
                        leaves.push((*k, *v));
                    }
                }
                if !replaced {
                    let at = leaves.partition_point(|(k, _)| *k < key);
                    leaves.insert(at, (key, value));
                }
                Tree::build(depth, &leaves, out)
            }
            ANode::Internal { left, right } => {
                let split = updates.partition_point(|(k, _)| !bit(k, depth));
                // Both children are about to be read: start both loads now.
                if split > 0 {
                    self.prefetch(left);
                }
                if split < updates.len() {
                    self.prefetch(right);
                }
                let parallel = updates.len() >= PARALLEL_UPDATES && depth < PARALLEL_DEPTH;
                let (l, r) = Tree::both(parallel, out, |is_right, o| {
                    let (link, part) = if is_right {
                        (right, &updates[split..])
                    } else {
                        (left, &updates[..split])
                    };
                    self.apply(self.old_sub(link), depth + 1, part, o)
                });
                Tree::join(l, r, out)
            }
        }
    }

    /// Fills in the hashes of new nodes: leaves first, then internal nodes
    /// by height, each height hashed eight at a time (AVX2) and, when large,
    /// on two threads. Children always precede their parent in `out`.
    fn hash_new(out: &mut [NewEntry], blocks: &mut Vec<u8>, hashes: &mut Vec<u8>) {
        let mut height = vec![0u16; out.len()];
        let mut by_height: Vec<Vec<u32>> = Vec::new();
        for i in 0..out.len() {
            let h = match out[i].entry.node {
                ANode::Leaf { .. } => 0,
                ANode::Internal { left, right } => {
                    let of = |l: Link| match l {
                        Link::New(j) => height[j as usize] + 1,
                        _ => 1,
                    };
                    of(left).max(of(right))
                }
            };
            height[i] = h;
            if by_height.len() <= h as usize {
                by_height.resize(h as usize + 1, Vec::new());
            }
            by_height[h as usize].push(i as u32);
        }
        let (leaf_key, node_key) = key_words_pair();
        for (level, members) in by_height.iter().enumerate() {
            blocks.clear();
            for &i in members {
                let mut block = out[i as usize].block;
                if let ANode::Internal { left, right } = out[i as usize].entry.node {
                    if let Link::New(j) = left {
                        block[..32].copy_from_slice(&out[j as usize].entry.hash);
                    }
                    if let Link::New(j) = right {
                        block[32..].copy_from_slice(&out[j as usize].entry.hash);
                    }
                }
                blocks.extend_from_slice(&block);
            }
            let key = if level == 0 { leaf_key } else { node_key };
            hashes.clear();
            hashes.resize(members.len() * 32, 0);
            if members.len() >= 1024 {
                use rayon::prelude::*;
                let per = members.len().div_ceil(2).next_multiple_of(8);
                hashes
                    .par_chunks_mut(per * 32)
                    .zip(blocks.par_chunks(per * 64))
                    .for_each(|(h, b)| crate::blake3x8::hash_pairs(key, b, h));
            } else {
                crate::blake3x8::hash_pairs(key, blocks, hashes);
            }
            for (slot, &i) in members.iter().enumerate() {
                out[i as usize]
                    .entry
                    .hash
                    .copy_from_slice(&hashes[slot * 32..(slot + 1) * 32]);
            }
        }
    }

    /// The root after applying `updates` (any order; a key may appear once).
    pub fn update(&mut self, root: Hash, mut updates: Vec<Update>) -> Result<Hash, SmtError> {
        updates.sort_unstable_by_key(|u| u.0);
        if let Some(w) = updates.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(SmtError::DuplicateKey(w[0].0));
        }
        let start = self.resolve(&root)?;
        let mut scratch = std::mem::take(&mut self.scratch);
        let out = &mut scratch.out;
        out.clear();
        let mut new_root = self.apply(start, 0, &updates, out);
        Tree::hash_new(out, &mut scratch.blocks, &mut scratch.hashes);
        if let Link::New(i) = new_root.link {
            new_root.hash = out[i as usize].entry.hash;
        }
        let base = self.arena.len() as u32;
        let fix = |link: Link| match link {
            Link::New(i) => Link::Old(base + i),
            other => other,
        };
        for (i, new) in out.iter().enumerate() {
            let mut e = new.entry;
            match &mut e.node {
                ANode::Internal { left, right } => {
                    *left = fix(*left);
                    *right = fix(*right);
                }
                ANode::Leaf { data } => *data = self.leaves.push(new.block),
            }
            self.arena.push(e);
            self.fresh.push(base + i as u32);
        }
        if let Link::Old(i) = fix(new_root.link) {
            self.by_hash.insert(new_root.hash, i);
        }
        out.clear();
        self.scratch = scratch;
        Ok(new_root.hash)
    }

    /// The value hash stored under `key`, if any.
    pub fn get(&mut self, root: Hash, key: &Hash) -> Result<Option<Hash>, SmtError> {
        let p = self.prove(root, key)?;
        Ok(p.terminal.filter(|(k, _)| k == key).map(|(_, v)| v))
    }

    pub fn prove(&mut self, root: Hash, key: &Hash) -> Result<Proof, SmtError> {
        let mut siblings = Vec::new();
        let mut link = self.resolve(&root)?.link;
        let mut depth = 0;
        while let Link::Old(i) = link {
            match self.arena.get(i).node {
                ANode::Leaf { data } => {
                    return Ok(Proof {
                        siblings,
                        terminal: Some(self.leaf_kv(data)),
                    })
                }
                ANode::Internal { left, right } => {
                    let (next, other) = if bit(key, depth) {
                        (right, left)
                    } else {
                        (left, right)
                    };
                    siblings.push(self.hash_of(other));
                    link = next;
                    depth += 1;
                }
            }
        }
        Ok(Proof {
            siblings,
            terminal: None,
        })
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

#[cfg(test)]
mod speed {
    use super::*;

    #[test]
    #[ignore]
    fn update_speed() {
        let k = |i: u32| *blake3::hash(&i.to_be_bytes()).as_bytes();
        let mut t = Tree::new();
        let items: Vec<Update> = (0..1_000_000).map(|i| (k(i), Some(k(i + 7)))).collect();
        let t0 = std::time::Instant::now();
        let root = t.update(EMPTY, items).unwrap();
        eprintln!("build 1M: {:?}", t0.elapsed());
        for round in 0..3 {
            let mut ups: Vec<Update> = (0..1000)
                .map(|i| (k(i * 997), Some(k(i + round))))
                .collect();
            let t0 = std::time::Instant::now();
            ups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let start = t.resolve(&root).unwrap();
            let mut out = Vec::new();
            t.apply(start, 0, &ups, &mut out);
            let t1 = t0.elapsed();
            let t2 = std::time::Instant::now();
            t.update(root, ups).unwrap();
            eprintln!(
                "apply {:?}, update {:?} ({} nodes)",
                t1,
                t2.elapsed(),
                out.len()
            );
        }
    }
}
