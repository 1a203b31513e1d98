//! Freivalds' check that C = A·B for int8 A (n×k), B (k×m), int32 C (n×m).
//!
//! Each round draws r uniformly from Z_p^m (p = 2^61 − 1, from a BLAKE3 XOF
//! of the seed and the round) and compares A·(B·r) with C·r modulo p, using
//! matrix–vector products only: O(k·m + n·k + n·m) per round. If C ≠ A·B, an
//! entry of D = C − A·B is a non-zero integer of magnitude below p, so a round
//! passes with probability at most 1/p.

use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

pub const P: u64 = (1 << 61) - 1;
pub const CONTEXT: &str = "bcai 2026-11 freivalds vector";

#[inline]
fn reduce(x: i128) -> u64 {
    x.rem_euclid(P as i128) as u64
}

pub fn random_vector(seed: &[u8], round: u32, len: usize) -> Vec<u64> {
    let mut h = blake3::Hasher::new_derive_key(CONTEXT);
    h.update(&(seed.len() as u64).to_be_bytes());
    h.update(seed);
    h.update(&round.to_be_bytes());
    let mut xof = h.finalize_xof();
    let mut buf = vec![0u8; 8 * len];
    xof.fill(&mut buf);
    buf.chunks_exact(8)
        .map(|c| (u64::from_le_bytes(c.try_into().unwrap()) & P) % P)
        .collect()
}

fn dot_i8(row: ArrayView1<'_, i8>, v: &[u64]) -> u64 {
    let mut acc: i128 = 0;
    for (a, x) in row.iter().zip(v) {
        acc += (*a as i128) * (*x as i128);
    }
    reduce(acc)
}

fn dot_i32(row: ArrayView1<'_, i32>, v: &[u64]) -> u64 {
    let mut acc: i128 = 0;
    for (a, x) in row.iter().zip(v) {
        acc += (*a as i128) * (*x as i128);
    }
    reduce(acc)
}

fn mat_vec_i8(m: &ArrayView2<'_, i8>, v: &[u64]) -> Vec<u64> {
    (0..m.nrows())
        .into_par_iter()
        .map(|i| dot_i8(m.row(i), v))
        .collect()
}

pub fn check(
    a: &ArrayView2<'_, i8>,
    b: &ArrayView2<'_, i8>,
    c: &ArrayView2<'_, i32>,
    rounds: u32,
    seed: &[u8],
) -> bool {
    let m = b.ncols();
    for round in 0..rounds {
        let r = random_vector(seed, round, m);
        let br = mat_vec_i8(b, &r);
        let abr = mat_vec_i8(a, &br);
        let cr: Vec<u64> = (0..c.nrows())
            .into_par_iter()
            .map(|i| dot_i32(c.row(i), &r))
            .collect();
        if abr != cr {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn product(a: &Array2<i8>, b: &Array2<i8>) -> Array2<i32> {
        a.mapv(|x| x as i32).dot(&b.mapv(|x| x as i32))
    }

    #[test]
    fn accepts_the_product_and_rejects_one_wrong_entry() {
        let a = Array2::from_shape_fn((17, 33), |(i, j)| ((i * 7 + j * 3) % 255) as i8);
        let b = Array2::from_shape_fn((33, 9), |(i, j)| ((i * 5 + j * 11) % 255) as i8);
        let mut c = product(&a, &b);
        assert!(check(&a.view(), &b.view(), &c.view(), 2, b"seed"));
        c[[16, 8]] += 1;
        assert!(!check(&a.view(), &b.view(), &c.view(), 2, b"seed"));
    }
}
