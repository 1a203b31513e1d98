//! The PoUW transcript (docs/pouw.md): for every b×b output tile of A'·B'
//! and every b-wide slice ℓ of the inner dimension, the digest of the tile
//! of the running partial sum S_ℓ = A'[:, :(ℓ+1)b]·B'[:(ℓ+1)b, :] (int32,
//! exact), written as 4 little-endian bytes at leaf (ℓ·(n/b) + I)·(m/b) + J.
//!
//! digest = Σ_i (y_{2i} XOR λ)·y_{2i+1} mod 2^32 with y_e = (x_e + κ +
//! e·0x9E3779B9) mod 2^32 (x_e as u32), over the tile's entries in row-major
//! order (b even: a row's neighbours in pairs); the key holds κ (low 32
//! bits) and λ (high 32 bits). Must match
//! `bcai.pouw._transcript` byte for byte (tests check it). Output tiles run
//! in parallel (rayon); each keeps its b×b accumulator across the slices,
//! so the partial sums are never written out. Tiles that are multiples of
//! 16 run on the register-blocked AVX2 kernel (`pouw_avx2`) where the CPU
//! has AVX2; the code here is the portable kernel for the rest.

use ndarray::ArrayView2;
use rayon::prelude::*;

pub const PHI: u32 = 0x9E37_79B9;

#[inline]
fn dot(a: &[i8], b: &[i8]) -> i32 {
    // i8·i8 fits i16; LLVM turns this into pmaddwd
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as i16 as i32) * (*y as i16 as i32))
        .sum()
}

/// Bytes of a leaf: the digest as a little-endian u32.
pub const LEAF: usize = 4;

/// The digest of a tile's partial sums `acc` (row-major, an even count).
#[inline]
pub fn digest(acc: &[i32], key: u64) -> u32 {
    let (kappa, lambda) = (key as u32, (key >> 32) as u32);
    let y =
        |e: usize| (acc[e] as u32).wrapping_add(kappa.wrapping_add((e as u32).wrapping_mul(PHI)));
    (0..acc.len() / 2).fold(0u32, |d, i| {
        d.wrapping_add((y(2 * i) ^ lambda).wrapping_mul(y(2 * i + 1)))
    })
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile_body(
    a: &[i8],
    bt: &[i8],
    k: usize,
    tile: usize,
    steps: usize,
    i0: usize,
    j0: usize,
    key: u64,
) -> Vec<u32> {
    let mut acc = vec![0i32; tile * tile];
    let mut out = Vec::with_capacity(steps);
    for step in 0..steps {
        let (k0, k1) = (step * tile, (step + 1) * tile);
        for i in 0..tile {
            let arow = &a[(i0 + i) * k + k0..(i0 + i) * k + k1];
            let row = &mut acc[i * tile..(i + 1) * tile];
            for (j, slot) in row.iter_mut().enumerate() {
                let brow = &bt[(j0 + j) * k + k0..(j0 + j) * k + k1];
                *slot += dot(arow, brow);
            }
        }
        out.push(digest(&acc, key));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn tile_leaves(
    a: &[i8],
    bt: &[i8],
    k: usize,
    tile: usize,
    steps: usize,
    i0: usize,
    j0: usize,
    key: u64,
) -> Vec<u32> {
    tile_body(a, bt, k, tile, steps, i0, j0, key)
}

/// The same code compiled for AVX2 (256-bit vpmaddwd), picked at run time:
/// the wheel itself targets baseline x86-64.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_leaves_avx2(
    a: &[i8],
    bt: &[i8],
    k: usize,
    tile: usize,
    steps: usize,
    i0: usize,
    j0: usize,
    key: u64,
) -> Vec<u32> {
    tile_body(a, bt, k, tile, steps, i0, j0, key)
}

fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Leaves of the transcript of A' (n×k) and B'ᵀ (m×k, i.e. B' transposed,
/// rows contiguous), tile b, key κ.
pub fn transcript(
    a: &ArrayView2<'_, i8>,
    bt: &ArrayView2<'_, i8>,
    tile: usize,
    key: u64,
) -> Vec<u8> {
    let (n, k) = (a.nrows(), a.ncols());
    let m = bt.nrows();
    let (ti, tj, steps) = (n / tile, m / tile, k / tile);
    let tiles = ti * tj;
    let a = a.as_standard_layout();
    let bt = bt.as_standard_layout();
    let (a, bt) = (a.as_slice().unwrap(), bt.as_slice().unwrap());
    #[cfg(target_arch = "x86_64")]
    if crate::pouw_avx2::applies(tile) {
        return layout(
            &crate::pouw_avx2::transcript(a, bt, n, k, m, tile, key),
            steps,
        );
    }
    #[allow(unused_variables)] // read only on x86-64
    let avx2 = avx2();
    let per_tile: Vec<Vec<u32>> = (0..tiles)
        .into_par_iter()
        .map(|t| {
            let (i0, j0) = ((t / tj) * tile, (t % tj) * tile);
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2 (checked at run time)
                return unsafe { tile_leaves_avx2(a, bt, k, tile, steps, i0, j0, key) };
            }
            tile_leaves(a, bt, k, tile, steps, i0, j0, key)
        })
        .collect();
    layout(&per_tile, steps)
}

/// The leaves in transcript order (slice-major) from each tile's digests.
pub fn layout(per_tile: &[Vec<u32>], steps: usize) -> Vec<u8> {
    let tiles = per_tile.len();
    let mut leaves = vec![0u8; steps * tiles * LEAF];
    for (t, digests) in per_tile.iter().enumerate() {
        for (step, d) in digests.iter().enumerate() {
            let at = (step * tiles + t) * LEAF;
            leaves[at..at + LEAF].copy_from_slice(&d.to_le_bytes());
        }
    }
    leaves
}

/// The portable kernel alone (tests compare it with the AVX2 one).
#[cfg(test)]
pub fn transcript_portable(
    a: &[i8],
    bt: &[i8],
    n: usize,
    k: usize,
    m: usize,
    tile: usize,
    key: u64,
) -> Vec<u8> {
    let (tj, steps) = (m / tile, k / tile);
    let per_tile: Vec<Vec<u32>> = (0..(n / tile) * tj)
        .into_par_iter()
        .map(|t| tile_leaves(a, bt, k, tile, steps, (t / tj) * tile, (t % tj) * tile, key))
        .collect();
    layout(&per_tile, steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn one_tile_one_step_is_the_digest_of_the_product() {
        let a = Array2::from_shape_fn((2, 2), |(i, j)| (i * 2 + j) as i8 - 1);
        let bt = Array2::from_shape_fn((2, 2), |(i, j)| (i + 3 * j) as i8 - 2);
        let leaves = transcript(&a.view(), &bt.view(), 2, 7);
        let mut acc = vec![0i32; 4];
        for i in 0..2 {
            for j in 0..2 {
                acc[i * 2 + j] = (0..2)
                    .map(|kk| a[[i, kk]] as i32 * bt[[j, kk]] as i32)
                    .sum();
            }
        }
        assert_eq!(leaves, digest(&acc, 7).to_le_bytes().to_vec());
    }

    #[test]
    fn digest_adds_the_key_and_multiplies_pairs_the_first_xored() {
        // κ = 5, λ = 0x0F0F_0000: y_0 = 0 + 5, y_1 = (−1 + 5 + φ) mod 2^32,
        // y_2 = (−6 + 5 + 2φ) mod 2^32, y_3 = (9 + 5 + 3φ) mod 2^32;
        // d = (y_0 XOR λ)·y_1 + (y_2 XOR λ)·y_3 mod 2^32
        let lambda = 0x0F0F_0000u64;
        let p = PHI as u64;
        let y = [
            5u64,
            4 + p,
            (2 * p + 0xFFFF_FFFF) % (1 << 32),
            (14 + 3 * p) % (1 << 32),
        ];
        let want = ((y[0] ^ lambda) * y[1] + (y[2] ^ lambda) * y[3]) % (1 << 32);
        assert_eq!(digest(&[0, -1, -6, 9], 5 | (lambda << 32)) as u64, want);
        // a second entry that cancels its offset voids its pair: nothing left
        let cancel = 0u32.wrapping_sub(7u32.wrapping_add(PHI)) as i32;
        assert_eq!(digest(&[-7, cancel], 7 | (3 << 32)), 0);
        // a first entry that cancels its offset leaves λ·y_1
        let y1 = 7u32.wrapping_add(PHI).wrapping_add(2);
        assert_eq!(digest(&[-7, 2], 7 | (3 << 32)), 3u32.wrapping_mul(y1));
    }

    #[test]
    fn an_accumulator_started_at_the_offsets_holds_the_digest_terms() {
        // what a GPU kernel does: start the int32 accumulator at κ + e·φ
        // (wrapping), add the products, square what it holds
        let key = 0x1234_5678_DEAD_BEEFu64;
        let (kappa, lambda) = (key as u32, (key >> 32) as u32);
        let (tile, k) = (8usize, 24usize);
        let a = Array2::from_shape_fn((tile, k), |(i, j)| ((i * 31 + j * 7) % 255) as u8 as i8);
        let bt = Array2::from_shape_fn((tile, k), |(i, j)| ((i * 13 + j * 5) % 253) as u8 as i8);
        let leaves = transcript(&a.view(), &bt.view(), tile, key);
        let mut acc: Vec<i32> = (0..tile * tile)
            .map(|e| kappa.wrapping_add((e as u32).wrapping_mul(PHI)) as i32)
            .collect();
        for step in 0..k / tile {
            for (e, slot) in acc.iter_mut().enumerate() {
                let (i, j) = (e / tile, e % tile);
                for kk in step * tile..(step + 1) * tile {
                    *slot = slot.wrapping_add(a[[i, kk]] as i32 * bt[[j, kk]] as i32);
                }
            }
            let d = acc.chunks_exact(2).fold(0u32, |d, y| {
                d.wrapping_add((y[0] as u32 ^ lambda).wrapping_mul(y[1] as u32))
            });
            assert_eq!(leaves[step * LEAF..(step + 1) * LEAF], d.to_le_bytes());
        }
    }

    #[test]
    fn tile_128_leaves_are_the_digests_of_the_partial_sums() {
        let (tile, k) = (128usize, 256usize);
        let a = Array2::from_shape_fn((tile, k), |(i, j)| ((i * 7 + j * 3) % 255) as u8 as i8);
        let bt = Array2::from_shape_fn((tile, k), |(i, j)| ((i * 5 + j * 11) % 255) as u8 as i8);
        let leaves = transcript(&a.view(), &bt.view(), tile, 3);
        let mut acc = vec![0i32; tile * tile];
        for step in 0..2 {
            for (e, slot) in acc.iter_mut().enumerate() {
                let (i, j) = (e / tile, e % tile);
                *slot += (step * tile..(step + 1) * tile)
                    .map(|kk| a[[i, kk]] as i32 * bt[[j, kk]] as i32)
                    .sum::<i32>();
            }
            assert_eq!(
                leaves[step * LEAF..(step + 1) * LEAF],
                digest(&acc, 3).to_le_bytes()
            );
        }
    }

    #[test]
    fn digest_is_not_additive() {
        let x = [5i32, -3, 7, 0];
        let y = [1i32, 2, -9, 4];
        let sum: Vec<i32> = x.iter().zip(&y).map(|(p, q)| p + q).collect();
        assert_ne!(
            digest(&sum, 11),
            digest(&x, 11).wrapping_add(digest(&y, 11))
        );
    }
}
