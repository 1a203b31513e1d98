//! The transcript's AVX2 kernel (x86-64, picked at run time), for tiles
//! that are multiples of 16.
//!
//! A' is widened to i16 once per attempt, so that the pair (A'[i, 2p],
//! A'[i, 2p + 1]) is one 32-bit word to broadcast; B'ᵀ is packed once into
//! blocks of 8 columns where each pair p of inner indices is 8 lanes of
//! (B'[2p, j], B'[2p + 1, j]) — 32 bytes. `vpmaddwd` of the two gives, in
//! lane j, A'[i, 2p]·B'[2p, j] + A'[i, 2p + 1]·B'[2p + 1, j] as i32 (at most
//! 2·127² in magnitude: exact). A register block of 4 rows × 16 columns (8
//! accumulators) walks the pairs of one b-wide slice, as BLAS kernels do, so
//! a multiply-add costs one sixteenth of an instruction instead of a dot
//! product's horizontal sum.
//!
//! The tile's accumulator starts at κ + e·φ (wrapping, as on the GPU), so
//! after slice ℓ it holds y_e and the leaf is Σ (y_{2i} XOR λ)·y_{2i+1} mod
//! 2^32 — the same bytes as `pouw::digest` (tests compare the two kernels).

use std::arch::x86_64::*;

use std::sync::Mutex;

use rayon::prelude::*;

use crate::pouw::PHI;

const ROWS: usize = 4; // rows of a register block
const LANES: usize = 8; // i32 lanes of a vector: columns of a packed block

/// The kernel applies: AVX2 here and b a multiple of 16.
pub fn applies(tile: usize) -> bool {
    tile % 16 == 0 && std::arch::is_x86_feature_detected!("avx2")
}

/// `v` with `len` entries; its contents are about to be overwritten, so a
/// buffer of the right size is reused as it is (no zeroing, no new pages).
fn sized<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() != len {
        v.clear();
        v.resize(len, T::default());
    }
    v
}

/// The int8 entry x + y (wrapping as NumPy's `astype` does) as i16.
#[inline(always)]
fn noisy16(x: i8, y: i32) -> i16 {
    (x as i32).wrapping_add(y) as i8 as i16
}

/// out = A widened to i16, row-major.
fn widen_into(out: &mut Vec<i16>, a: &[i8]) {
    const CHUNK: usize = 1 << 16;
    sized(out, a.len())
        .par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK))
        .for_each(|(o, x)| o.iter_mut().zip(x).for_each(|(o, x)| *o = *x as i16));
}

/// Bᵀ (m×k, rows contiguous; k even, m a multiple of 8) packed: block c
/// of columns 8c..8c+8, pair p, lane l, half h at ((c·k/2 + p)·8 + l)·2 + h
/// = B[2p + h, 8c + l].
fn pack_cols_into(out: &mut Vec<i16>, bt: &[i8], m: usize, k: usize) {
    sized(out, m * k)
        .par_chunks_mut(LANES * k)
        .enumerate()
        .for_each(|(c, block)| {
            for l in 0..LANES {
                let row = &bt[(c * LANES + l) * k..(c * LANES + l + 1) * k];
                for (p, pair) in row.chunks_exact(2).enumerate() {
                    block[(p * LANES + l) * 2] = pair[0] as i16;
                    block[(p * LANES + l) * 2 + 1] = pair[1] as i16;
                }
            }
        });
}

/// Operands in the kernel's layouts: A widened (rows×k), B packed.
#[derive(Default)]
pub struct Packed {
    a: Vec<i16>,
    b: Vec<i16>,
    k: usize,
}

impl Packed {
    /// From A (rows×k) and Bᵀ (m×k).
    pub fn load(&mut self, a: &[i8], bt: &[i8], m: usize, k: usize) {
        widen_into(&mut self.a, a);
        pack_cols_into(&mut self.b, bt, m, k);
        self.k = k;
    }
}

/// Buffers kept from one attempt to the next: in a VM a fresh 4 KiB page
/// costs a fault, and an attempt's buffers are megabytes.
#[derive(Default)]
pub struct Workspace {
    op: Packed,
    noise: Packed,
    /// The caller's tokens for what `op`'s A' and B' were formed from
    /// (empty: unknown), so that a side whose token repeats is kept.
    held: [Vec<u8>; 2],
}

static WORKSPACE: Mutex<Option<Workspace>> = Mutex::new(None);

/// Runs `body` with the shared workspace, or a fresh one while another
/// thread holds it.
pub fn with_workspace<R>(body: impl FnOnce(&mut Workspace) -> R) -> R {
    match WORKSPACE.try_lock() {
        Ok(mut held) => body(held.get_or_insert_with(Workspace::default)),
        Err(_) => body(&mut Workspace::default()),
    }
}

impl Workspace {
    /// A (rows×k) and Bᵀ (m×k) as they are into the operands; no side is
    /// held after (every write of the operands goes through here or
    /// `load_noisy`, so that a token never outlives what it named).
    pub fn load(&mut self, a: &[i8], bt: &[i8], m: usize, k: usize) -> &Packed {
        self.held.iter_mut().for_each(Vec::clear);
        self.op.load(a, bt, m, k);
        &self.op
    }

    /// The operands last loaded or formed.
    pub fn op(&self) -> &Packed {
        &self.op
    }

    /// The noisy operands A' = A + E_L·E_R and B' = B + F_L·F_R of A (n×k)
    /// and B (k×m, row-major) into `op`, from the factors E_L (n×r), E_Rᵀ
    /// (k×r), F_L (k×r) and F_Rᵀ (m×r); entries wrap to int8 as NumPy's
    /// `astype` does (the parameters keep them within ±127). The noise
    /// products run on the same kernel (inner dimension r).
    ///
    /// `tokens` name what each side is formed from (for A': A and E's
    /// seed, shape and rank; for B' likewise): a side whose token equals
    /// the one its buffer was last formed under is kept as it is — with
    /// nonces in order one side of the noise repeats (docs/pouw.md,
    /// "Seeds"). Without tokens both sides are formed and none is held.
    #[allow(clippy::too_many_arguments)]
    pub fn load_noisy(
        &mut self,
        a: &[i8],
        b: &[i8],
        e_l: &[i8],
        e_rt: &[i8],
        f_l: &[i8],
        f_rt: &[i8],
        (n, k, m, r): (usize, usize, usize, usize),
        tile: usize,
        tokens: Option<[&[u8]; 2]>,
    ) {
        assert!(a.len() == n * k && b.len() == k * m && tile % 16 == 0);
        let sizes = [n * k, k * m];
        let lens = [self.op.a.len(), self.op.b.len()];
        let keep: [bool; 2] = std::array::from_fn(|side| match tokens {
            Some(t) => {
                !t[side].is_empty()
                    && self.held[side] == t[side]
                    && lens[side] == sizes[side]
                    && self.op.k == k
            }
            None => false,
        });
        for (held, kept) in self.held.iter_mut().zip(keep) {
            if !kept {
                held.clear(); // unknown until formed below
            }
        }
        if !keep[0] {
            self.form_a(a, e_l, e_rt, (n, k, r), tile);
        }
        if !keep[1] {
            self.form_b(b, f_l, f_rt, (k, m, r), tile);
        }
        self.op.k = k;
        if let Some(t) = tokens {
            for ((held, kept), token) in self.held.iter_mut().zip(keep).zip(t) {
                if !kept {
                    *held = token.to_vec();
                }
            }
        }
    }

    /// A' = A + E, E = E_L·E_R tile by tile, widened into `op.a`.
    fn form_a(
        &mut self,
        a: &[i8],
        e_l: &[i8],
        e_rt: &[i8],
        (n, k, r): (usize, usize, usize),
        tile: usize,
    ) {
        self.noise.load(e_l, e_rt, k, r);
        let out = Shared(sized(&mut self.op.a, n * k).as_mut_ptr());
        product_tiles(&self.noise, n, k, tile, |i0, j0, e| {
            for row in 0..tile {
                let at = (i0 + row) * k + j0;
                // SAFETY: entries at .. at + tile of row i0 + row lie inside
                // A' (n×k) and belong to this tile alone
                let dst = unsafe { std::slice::from_raw_parts_mut(out.at(at), tile) };
                for ((d, x), y) in dst.iter_mut().zip(&a[at..at + tile]).zip(&e[row * tile..]) {
                    *d = noisy16(*x, *y);
                }
            }
        });
    }

    /// B' = B + F, F = F_L·F_R (k×m) tile by tile, packed into `op.b`.
    fn form_b(
        &mut self,
        b: &[i8],
        f_l: &[i8],
        f_rt: &[i8],
        (k, m, r): (usize, usize, usize),
        tile: usize,
    ) {
        self.noise.load(f_l, f_rt, m, r);
        let out = Shared(sized(&mut self.op.b, k * m).as_mut_ptr());
        product_tiles(&self.noise, k, m, tile, |t0, j0, f| {
            for col in (0..tile).step_by(LANES) {
                let c = (j0 + col) / LANES;
                for row in (0..tile).step_by(2) {
                    let p = (t0 + row) / 2;
                    let at = (c * (k / 2) + p) * 2 * LANES;
                    // SAFETY: pair p of column block c is 16 entries inside
                    // the packed B' (k×m) that only this tile writes
                    let dst = unsafe { std::slice::from_raw_parts_mut(out.at(at), 2 * LANES) };
                    let (r0, r1) = ((t0 + row) * m + j0 + col, (t0 + row + 1) * m + j0 + col);
                    for l in 0..LANES {
                        dst[2 * l] = noisy16(b[r0 + l], f[row * tile + col + l]);
                        dst[2 * l + 1] = noisy16(b[r1 + l], f[(row + 1) * tile + col + l]);
                    }
                }
            }
        });
    }
}

/// Adds A'[i0.., slice]·B'[slice, j0..] over pairs [p0, p0 + pairs) into
/// the b×b accumulator `acc` (row stride b) of the tile at (i0, j0).
#[target_feature(enable = "avx2")]
unsafe fn slice_avx2(
    op: &Packed,
    tile: usize,
    i0: usize,
    j0: usize,
    p0: usize,
    pairs: usize,
    acc: &mut [i32],
) {
    let (k, half) = (op.k, op.k / 2);
    assert!(acc.len() == tile * tile && (i0 + tile) * k <= op.a.len());
    assert!(((j0 + tile) / LANES * half) * 2 * LANES <= op.b.len() && p0 + pairs <= half);
    for ib in (0..tile).step_by(ROWS) {
        // SAFETY (pointer arithmetic below): rows i0 + ib .. + ROWS and
        // pairs p0 .. p0 + pairs lie inside A' (checked above); column
        // blocks (j0 + jb)/8 and the next inside the packed B'; accumulator
        // rows ib .. ib + ROWS and columns jb .. jb + 16 inside `acc`.
        let arow = |r: usize| op.a.as_ptr().add((i0 + ib + r) * k + 2 * p0) as *const i32;
        let (a0, a1, a2, a3) = (arow(0), arow(1), arow(2), arow(3));
        for jb in (0..tile).step_by(2 * LANES) {
            let c = (j0 + jb) / LANES;
            let b0 = op.b.as_ptr().add((c * half + p0) * 2 * LANES) as *const __m256i;
            let b1 = op.b.as_ptr().add(((c + 1) * half + p0) * 2 * LANES) as *const __m256i;
            let out = acc.as_mut_ptr().add(ib * tile + jb);
            let at = |r: usize, v: usize| out.add(r * tile + v * LANES) as *mut __m256i;
            // written out by hand: the same block over arrays of vectors
            // measured 10% slower (n = 512, b = 64, 2-core EPYC)
            let mut c00 = _mm256_loadu_si256(at(0, 0));
            let mut c01 = _mm256_loadu_si256(at(0, 1));
            let mut c10 = _mm256_loadu_si256(at(1, 0));
            let mut c11 = _mm256_loadu_si256(at(1, 1));
            let mut c20 = _mm256_loadu_si256(at(2, 0));
            let mut c21 = _mm256_loadu_si256(at(2, 1));
            let mut c30 = _mm256_loadu_si256(at(3, 0));
            let mut c31 = _mm256_loadu_si256(at(3, 1));
            for p in 0..pairs {
                let v0 = _mm256_loadu_si256(b0.add(p));
                let v1 = _mm256_loadu_si256(b1.add(p));
                let x = _mm256_set1_epi32(a0.add(p).read_unaligned());
                c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x, v0));
                c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x, v1));
                let x = _mm256_set1_epi32(a1.add(p).read_unaligned());
                c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x, v0));
                c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x, v1));
                let x = _mm256_set1_epi32(a2.add(p).read_unaligned());
                c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(x, v0));
                c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(x, v1));
                let x = _mm256_set1_epi32(a3.add(p).read_unaligned());
                c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(x, v0));
                c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(x, v1));
            }
            _mm256_storeu_si256(at(0, 0), c00);
            _mm256_storeu_si256(at(0, 1), c01);
            _mm256_storeu_si256(at(1, 0), c10);
            _mm256_storeu_si256(at(1, 1), c11);
            _mm256_storeu_si256(at(2, 0), c20);
            _mm256_storeu_si256(at(2, 1), c21);
            _mm256_storeu_si256(at(3, 0), c30);
            _mm256_storeu_si256(at(3, 1), c31);
        }
    }
}

/// Σ (y_{2i} XOR λ)·y_{2i+1} mod 2^32 over the accumulator (it holds y_e):
/// λ XORed into the even lanes, then `vpmuludq` multiplies each even lane by
/// the odd lane above it (64-bit products, of which the low 32 bits count).
#[target_feature(enable = "avx2")]
unsafe fn leaf_avx2(acc: &[i32], lambda: u32) -> u32 {
    let mask = _mm256_set1_epi64x(lambda as i64); // λ in the even lanes, 0 in the odd
    let mut sum = _mm256_setzero_si256();
    for chunk in acc.chunks_exact(LANES) {
        // SAFETY: a chunk is 8 i32 = 32 bytes
        let y = _mm256_loadu_si256(chunk.as_ptr() as *const __m256i);
        let z = _mm256_xor_si256(y, mask);
        sum = _mm256_add_epi64(sum, _mm256_mul_epu32(z, _mm256_srli_epi64(y, 32)));
    }
    let mut lanes = [0u64; LANES / 2];
    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, sum);
    lanes.iter().fold(0u32, |d, v| d.wrapping_add(*v as u32))
}

/// The accumulator's start: κ + e·φ (wrapping) for entry e of a b×b tile.
fn offsets(tile: usize, kappa: u32) -> Vec<i32> {
    (0..tile * tile)
        .map(|e| kappa.wrapping_add((e as u32).wrapping_mul(PHI)) as i32)
        .collect()
}

/// The digests of tile (i0, j0), one per slice. Requires `applies(tile)`.
pub fn tile_leaves(
    op: &Packed,
    tile: usize,
    i0: usize,
    j0: usize,
    start: &[i32],
    lambda: u32,
) -> Vec<u32> {
    assert!(applies(tile));
    let steps = op.k / tile;
    let mut acc = start.to_vec();
    (0..steps)
        .map(|step| {
            // SAFETY: AVX2 is present (asserted); indices are checked inside
            unsafe {
                slice_avx2(op, tile, i0, j0, step * tile / 2, tile / 2, &mut acc);
                leaf_avx2(&acc, lambda)
            }
        })
        .collect()
}

/// Every tile's digests, tile t = I·(m/b) + J in parallel (rayon).
pub fn transcript(
    a: &[i8],
    bt: &[i8],
    n: usize,
    k: usize,
    m: usize,
    tile: usize,
    key: u64,
) -> Vec<Vec<u32>> {
    with_workspace(|ws| transcript_packed(ws.load(a, bt, m, k), n, m, tile, key))
}

/// The same over operands already packed.
pub fn transcript_packed(op: &Packed, n: usize, m: usize, tile: usize, key: u64) -> Vec<Vec<u32>> {
    let start = offsets(tile, key as u32);
    let (ti, tj) = (n / tile, m / tile);
    (0..ti * tj)
        .into_par_iter()
        .map(|t| {
            tile_leaves(
                op,
                tile,
                (t / tj) * tile,
                (t % tj) * tile,
                &start,
                (key >> 32) as u32,
            )
        })
        .collect()
}

/// A raw pointer that rayon's tasks share, each writing its own tile.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
// SAFETY: the tasks write disjoint regions (one output tile each)
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The pointer (a method, so that closures capture the whole `Shared`).
    fn at(self, offset: usize) -> *mut T {
        self.0.wrapping_add(offset)
    }
}

/// A·B (n×m) of packed operands, tile by tile in parallel, each walking k
/// slice by slice as the transcript does; `sink(i0, j0, acc)` receives each
/// b×b tile (row stride b) once.
fn product_tiles(
    op: &Packed,
    n: usize,
    m: usize,
    tile: usize,
    sink: impl Fn(usize, usize, &[i32]) + Sync,
) {
    assert!(applies(tile) && n % tile == 0 && m % tile == 0 && op.k % 2 == 0);
    assert!(op.a.len() == n * op.k && op.b.len() == m * op.k);
    let (tj, half) = (m / tile, op.k / 2);
    (0..(n / tile) * tj).into_par_iter().for_each(|t| {
        let (i0, j0) = ((t / tj) * tile, (t % tj) * tile);
        let mut acc = vec![0i32; tile * tile];
        for p0 in (0..half).step_by(tile / 2) {
            let pairs = (tile / 2).min(half - p0);
            // SAFETY: AVX2 is present (asserted); indices are checked inside
            unsafe { slice_avx2(op, tile, i0, j0, p0, pairs, &mut acc) };
        }
        sink(i0, j0, &acc);
    });
}

/// out = A·B (int32, n×m row-major) of packed operands.
pub fn product_into(op: &Packed, n: usize, m: usize, tile: usize, out: &mut [i32]) {
    assert_eq!(out.len(), n * m);
    let base = Shared(out.as_mut_ptr());
    product_tiles(op, n, m, tile, |i0, j0, acc| {
        for r in 0..tile {
            // SAFETY: row i0 + r, columns j0 .. j0 + tile lie inside `out`
            // (n×m, checked) and belong to this tile alone
            let row = unsafe { std::slice::from_raw_parts_mut(base.at((i0 + r) * m + j0), tile) };
            row.copy_from_slice(&acc[r * tile..(r + 1) * tile]);
        }
    });
}

/// A·B (int32, n×m row-major) of A (n×k) and Bᵀ (m×k) by the same kernel
/// without the digest, for comparisons: the best bare int8 product we have
/// on the CPU.
pub fn product(a: &[i8], bt: &[i8], n: usize, k: usize, m: usize, tile: usize, out: &mut [i32]) {
    with_workspace(|ws| product_into(ws.load(a, bt, m, k), n, m, tile, out))
}

#[cfg(test)]
#[path = "pouw_avx2_tests.rs"]
mod tests;
