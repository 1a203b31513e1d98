//! Tests of the AVX2 transcript kernel and its workspace (pouw_avx2.rs).

use super::*;
use crate::pouw::{transcript_portable, LEAF};

/// Deterministic int8 entries in [lo, hi] (a xorshift stream).
fn entries(len: usize, seed: u64, lo: i32, hi: i32) -> Vec<i8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (lo + (s % (hi - lo + 1) as u64) as i32) as i8
        })
        .collect()
}

#[test]
fn leaves_equal_the_portable_kernel() {
    if !applies(16) {
        return; // no AVX2 on this CPU: the portable kernel runs alone
    }
    for (tile, n, k, m, key) in [
        (16usize, 32usize, 48usize, 64usize, 7u64),
        (32, 64, 96, 32, 0xDEAD_BEEF_0123_4567),
        (64, 128, 192, 64, u64::MAX),
        (128, 128, 256, 256, 0x9E37_79B9_0000_0001),
    ] {
        let a = entries(n * k, tile as u64, -127, 127);
        let bt = entries(m * k, 3 * tile as u64 + 1, -127, 127);
        let fast = transcript(&a, &bt, n, k, m, tile, key);
        let mut leaves = vec![0u8; fast.len() * fast[0].len() * LEAF];
        for (t, d) in fast.iter().enumerate() {
            for (step, v) in d.iter().enumerate() {
                let at = (step * fast.len() + t) * LEAF;
                leaves[at..at + LEAF].copy_from_slice(&v.to_le_bytes());
            }
        }
        assert_eq!(
            leaves,
            transcript_portable(&a, &bt, n, k, m, tile, key),
            "tile {tile}"
        );
    }
}

#[test]
fn noisy_operands_are_built_in_place_as_numpy_would() {
    if !applies(16) {
        return;
    }
    let (n, k, m, r, tile) = (64usize, 96usize, 48usize, 16usize, 16usize);
    let a = entries(n * k, 21, -127, 127); // sums may leave int8: they wrap
    let b = entries(k * m, 22, -63, 63);
    let (e_l, e_rt) = (entries(n * r, 23, -1, 1), entries(k * r, 24, -1, 1));
    let (f_l, f_rt) = (entries(k * r, 25, -1, 1), entries(m * r, 26, -1, 1));
    let dot =
        |x: &[i8], y: &[i8]| -> i32 { x.iter().zip(y).map(|(p, q)| *p as i32 * *q as i32).sum() };
    let a2: Vec<i8> = (0..n * k)
        .map(|e| (a[e] as i32 + dot(&e_l[e / k * r..][..r], &e_rt[e % k * r..][..r])) as i8)
        .collect();
    let mut b2t = vec![0i8; m * k]; // B'ᵀ
    for t in 0..k {
        for j in 0..m {
            b2t[j * k + t] =
                (b[t * m + j] as i32 + dot(&f_l[t * r..][..r], &f_rt[j * r..][..r])) as i8;
        }
    }
    let mut ws = Workspace::default();
    for key in [0u64, 0xFEED_FACE_CAFE_BEEF] {
        ws.load_noisy(&a, &b, &e_l, &e_rt, &f_l, &f_rt, (n, k, m, r), tile, None);
        let fused = transcript_packed(&ws.op, n, m, tile, key);
        assert_eq!(fused, transcript(&a2, &b2t, n, k, m, tile, key));
    }
}

#[test]
fn a_side_whose_token_repeats_is_kept() {
    if !applies(16) {
        return;
    }
    let (n, k, m, r, tile) = (32usize, 48usize, 64usize, 16usize, 16usize);
    let a = entries(n * k, 31, -63, 63);
    let b = entries(k * m, 32, -63, 63);
    let ternary = |len: usize, seed: u64| entries(len, seed, -1, 1);
    let (e1, e1t, e2, e2t) = (
        ternary(n * r, 33),
        ternary(k * r, 34),
        ternary(n * r, 35),
        ternary(k * r, 36),
    );
    let (f1, f1t, f2, f2t) = (
        ternary(k * r, 37),
        ternary(m * r, 38),
        ternary(k * r, 39),
        ternary(m * r, 40),
    );
    let (e_sets, f_sets) = (
        [(&e1[..], &e1t[..]), (&e2, &e2t)],
        [(&f1[..], &f1t[..]), (&f2, &f2t)],
    );
    // the transcript of A' from E set e and B' from F set f, formed afresh
    let fresh = |e: usize, f: usize| {
        let ((el, ert), (fl, frt)) = (e_sets[e], f_sets[f]);
        let mut fresh = Workspace::default();
        fresh.load_noisy(&a, &b, el, ert, fl, frt, (n, k, m, r), tile, None);
        transcript_packed(&fresh.op, n, m, tile, 7)
    };
    // (the factor sets given for E and F, the tokens, the sets A' and B' must come from)
    type Step<'t> = (usize, usize, Option<[&'t [u8]; 2]>, usize, usize);
    let steps: [Step; 7] = [
        (0, 0, Some([b"E1", b"F1"]), 0, 0),
        (1, 1, Some([b"E1", b"F2"]), 0, 1), // E's token repeats: A' stays as formed from E1
        (1, 0, Some([b"E2", b"F2"]), 1, 1), // F's repeats: B' stays
        (0, 0, None, 0, 0),                 // without tokens both are formed, none held
        (1, 1, Some([b"E2", b"F2"]), 1, 1),
        (0, 0, Some([b"", b""]), 0, 0), // an empty token never matches
        (1, 1, Some([b"", b""]), 1, 1),
    ];
    let mut ws = Workspace::default();
    for (given_e, given_f, tokens, want_e, want_f) in steps {
        let ((el, ert), (fl, frt)) = (e_sets[given_e], f_sets[given_f]);
        ws.load_noisy(&a, &b, el, ert, fl, frt, (n, k, m, r), tile, tokens);
        let want = fresh(want_e, want_f);
        assert_eq!(transcript_packed(&ws.op, n, m, tile, 7), want, "{tokens:?}");
    }
    // other operands loaded in between (the bare product, a plain transcript): nothing kept
    let (el, ert, fl, frt) = (e_sets[0].0, e_sets[0].1, f_sets[0].0, f_sets[0].1);
    let tokens = Some([&b"E1"[..], &b"F1"[..]]);
    for zeros in [false, true] {
        if zeros {
            ws.load(&vec![0i8; n * k], &vec![0i8; m * k], m, k);
        }
        ws.load_noisy(&a, &b, el, ert, fl, frt, (n, k, m, r), tile, tokens);
    }
    assert_eq!(transcript_packed(ws.op(), n, m, tile, 7), fresh(0, 0));
}

#[test]
fn worst_case_entries_are_exact() {
    // every product +127·127 or −127·127: sums of 2·127² per pair, k·127² per entry
    if !applies(16) {
        return;
    }
    let (n, k, m) = (16usize, 2048usize, 16usize);
    let a = vec![127i8; n * k];
    let mut bt = vec![127i8; m * k];
    bt[m * k / 2..].iter_mut().for_each(|x| *x = -127);
    let mut c = vec![0i32; n * m];
    product(&a, &bt, n, k, m, 16, &mut c);
    for i in 0..n {
        for j in 0..m {
            let want = if j < m / 2 { 1 } else { -1 } * (k as i32) * 127 * 127;
            assert_eq!(c[i * m + j], want);
        }
    }
}

#[test]
fn product_equals_the_naive_product() {
    if !applies(16) {
        return;
    }
    let (n, k, m, tile) = (64usize, 80usize, 96usize, 32usize);
    let a = entries(n * k, 11, -128, 127);
    let bt = entries(m * k, 12, -128, 127);
    let mut c = vec![7i32; n * m];
    product(&a, &bt, n, k, m, tile, &mut c);
    for i in 0..n {
        for j in 0..m {
            let want: i32 = (0..k)
                .map(|t| a[i * k + t] as i32 * bt[j * k + t] as i32)
                .sum();
            assert_eq!(c[i * m + j], want, "({i}, {j})");
        }
    }
}
