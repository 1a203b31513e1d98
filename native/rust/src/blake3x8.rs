//! Many independent single-block BLAKE3 hashes at once.
//!
//! A Merkle tree hashes millions of inputs of at most 64 bytes (a leaf, or two
//! child hashes). The `blake3` crate hashes one input per call, so its SIMD
//! lanes sit idle; here eight inputs share one AVX2 compression (one input per
//! lane). Every input is hashed in BLAKE3's keyed mode, so the output equals
//! `blake3::keyed_hash(key, input)` exactly (checked in the tests below).

pub const BLOCK_LEN: usize = 64;
pub const OUT_LEN: usize = 32;

const IV: [u32; 8] = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
];
const MSG_PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const CHUNK_START: u32 = 1;
const CHUNK_END: u32 = 2;
const ROOT: u32 = 8;
const KEYED_HASH: u32 = 16;
/// Flags of a keyed hash whose whole input is one block.
const SINGLE_BLOCK_KEYED: u32 = CHUNK_START | CHUNK_END | ROOT | KEYED_HASH;

/// The key as eight little-endian words (BLAKE3's chaining value).
pub fn key_words(key: &[u8; 32]) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (i, c) in key.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

#[inline(always)]
fn g(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize, mx: u32, my: u32) {
    s[a] = s[a].wrapping_add(s[b]).wrapping_add(mx);
    s[d] = (s[d] ^ s[a]).rotate_right(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_right(12);
    s[a] = s[a].wrapping_add(s[b]).wrapping_add(my);
    s[d] = (s[d] ^ s[a]).rotate_right(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_right(7);
}

/// One keyed single-block hash, portable code (used for the tail of a batch
/// and on CPUs without AVX2).
pub fn hash_one(key: &[u32; 8], input: &[u8]) -> [u8; OUT_LEN] {
    debug_assert!(input.len() <= BLOCK_LEN);
    let mut block = [0u8; BLOCK_LEN];
    block[..input.len()].copy_from_slice(input);
    let mut m = [0u32; 16];
    for (i, c) in block.chunks_exact(4).enumerate() {
        m[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    let mut s = [
        key[0],
        key[1],
        key[2],
        key[3],
        key[4],
        key[5],
        key[6],
        key[7],
        IV[0],
        IV[1],
        IV[2],
        IV[3],
        0,
        0,
        input.len() as u32,
        SINGLE_BLOCK_KEYED,
    ];
    for r in 0..7 {
        g(&mut s, 0, 4, 8, 12, m[0], m[1]);
        g(&mut s, 1, 5, 9, 13, m[2], m[3]);
        g(&mut s, 2, 6, 10, 14, m[4], m[5]);
        g(&mut s, 3, 7, 11, 15, m[6], m[7]);
        g(&mut s, 0, 5, 10, 15, m[8], m[9]);
        g(&mut s, 1, 6, 11, 12, m[10], m[11]);
        g(&mut s, 2, 7, 8, 13, m[12], m[13]);
        g(&mut s, 3, 4, 9, 14, m[14], m[15]);
        if r < 6 {
            let old = m;
            for i in 0..16 {
                m[i] = old[MSG_PERMUTATION[i]];
            }
        }
    }
    let mut out = [0u8; OUT_LEN];
    for i in 0..8 {
        out[4 * i..4 * i + 4].copy_from_slice(&(s[i] ^ s[i + 8]).to_le_bytes());
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn rot16(x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(
            x,
            _mm256_setr_epi8(
                2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10,
                11, 8, 9, 14, 15, 12, 13,
            ),
        )
    }
    #[inline(always)]
    unsafe fn rot8(x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(
            x,
            _mm256_setr_epi8(
                1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9,
                10, 11, 8, 13, 14, 15, 12,
            ),
        )
    }
    #[inline(always)]
    unsafe fn rot12(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20))
    }
    #[inline(always)]
    unsafe fn rot7(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25))
    }
    #[inline(always)]
    unsafe fn add(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn xor(a: __m256i, b: __m256i) -> __m256i {
        _mm256_xor_si256(a, b)
    }

    #[inline(always)]
    unsafe fn g(
        s: &mut [__m256i; 16],
        a: usize,
        b: usize,
        c: usize,
        d: usize,
        mx: __m256i,
        my: __m256i,
    ) {
        s[a] = add(add(s[a], s[b]), mx);
        s[d] = rot16(xor(s[d], s[a]));
        s[c] = add(s[c], s[d]);
        s[b] = rot12(xor(s[b], s[c]));
        s[a] = add(add(s[a], s[b]), my);
        s[d] = rot8(xor(s[d], s[a]));
        s[c] = add(s[c], s[d]);
        s[b] = rot7(xor(s[b], s[c]));
    }

    /// Transposes an 8×8 matrix of u32 held as eight row vectors.
    #[inline(always)]
    unsafe fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
        let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
        let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
        let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
        let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
        let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
        let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
        let u0 = _mm256_unpacklo_epi64(t0, t2);
        let u1 = _mm256_unpackhi_epi64(t0, t2);
        let u2 = _mm256_unpacklo_epi64(t1, t3);
        let u3 = _mm256_unpackhi_epi64(t1, t3);
        let u4 = _mm256_unpacklo_epi64(t4, t6);
        let u5 = _mm256_unpackhi_epi64(t4, t6);
        let u6 = _mm256_unpacklo_epi64(t5, t7);
        let u7 = _mm256_unpackhi_epi64(t5, t7);
        [
            _mm256_permute2x128_si256(u0, u4, 0x20),
            _mm256_permute2x128_si256(u1, u5, 0x20),
            _mm256_permute2x128_si256(u2, u6, 0x20),
            _mm256_permute2x128_si256(u3, u7, 0x20),
            _mm256_permute2x128_si256(u0, u4, 0x31),
            _mm256_permute2x128_si256(u1, u5, 0x31),
            _mm256_permute2x128_si256(u2, u6, 0x31),
            _mm256_permute2x128_si256(u3, u7, 0x31),
        ]
    }

    /// Hashes eight zero-padded 64-byte blocks (`blocks`, 512 bytes) whose real
    /// lengths are `lens`, writing eight 32-byte outputs to `out` (256 bytes).
    #[target_feature(enable = "avx2")]
    pub unsafe fn hash8(key: &[u32; 8], blocks: &[u8], lens: &[u32; 8], out: &mut [u8]) {
        debug_assert!(blocks.len() >= 8 * BLOCK_LEN && out.len() >= 8 * OUT_LEN);
        let p = blocks.as_ptr();
        let mut lo = [_mm256_setzero_si256(); 8];
        let mut hi = [_mm256_setzero_si256(); 8];
        for j in 0..8 {
            lo[j] = _mm256_loadu_si256(p.add(j * BLOCK_LEN) as *const __m256i);
            hi[j] = _mm256_loadu_si256(p.add(j * BLOCK_LEN + 32) as *const __m256i);
        }
        let lo = transpose8(lo);
        let hi = transpose8(hi);
        let mut m = [_mm256_setzero_si256(); 16];
        m[..8].copy_from_slice(&lo);
        m[8..].copy_from_slice(&hi);
        let mut s = [
            _mm256_set1_epi32(key[0] as i32),
            _mm256_set1_epi32(key[1] as i32),
            _mm256_set1_epi32(key[2] as i32),
            _mm256_set1_epi32(key[3] as i32),
            _mm256_set1_epi32(key[4] as i32),
            _mm256_set1_epi32(key[5] as i32),
            _mm256_set1_epi32(key[6] as i32),
            _mm256_set1_epi32(key[7] as i32),
            _mm256_set1_epi32(IV[0] as i32),
            _mm256_set1_epi32(IV[1] as i32),
            _mm256_set1_epi32(IV[2] as i32),
            _mm256_set1_epi32(IV[3] as i32),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_loadu_si256(lens.as_ptr() as *const __m256i),
            _mm256_set1_epi32(SINGLE_BLOCK_KEYED as i32),
        ];
        for r in 0..7 {
            g(&mut s, 0, 4, 8, 12, m[0], m[1]);
            g(&mut s, 1, 5, 9, 13, m[2], m[3]);
            g(&mut s, 2, 6, 10, 14, m[4], m[5]);
            g(&mut s, 3, 7, 11, 15, m[6], m[7]);
            g(&mut s, 0, 5, 10, 15, m[8], m[9]);
            g(&mut s, 1, 6, 11, 12, m[10], m[11]);
            g(&mut s, 2, 7, 8, 13, m[12], m[13]);
            g(&mut s, 3, 4, 9, 14, m[14], m[15]);
            if r < 6 {
                let old = m;
                for i in 0..16 {
                    m[i] = old[MSG_PERMUTATION[i]];
                }
            }
        }
        let words = transpose8([
            xor(s[0], s[8]),
            xor(s[1], s[9]),
            xor(s[2], s[10]),
            xor(s[3], s[11]),
            xor(s[4], s[12]),
            xor(s[5], s[13]),
            xor(s[6], s[14]),
            xor(s[7], s[15]),
        ]);
        let q = out.as_mut_ptr();
        for (j, w) in words.iter().enumerate() {
            _mm256_storeu_si256(q.add(j * OUT_LEN) as *mut __m256i, *w);
        }
    }
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Hashes `n = out.len() / 32` inputs, where input `i` is
/// `get(i)` (at most 64 bytes). Groups of eight go through AVX2 when the CPU
/// has it; the rest through the portable compression.
pub fn hash_many<'a, F>(key: &[u32; 8], n: usize, get: F, out: &mut [u8])
where
    F: Fn(usize) -> &'a [u8],
{
    assert_eq!(out.len(), n * OUT_LEN);
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        let mut blocks = [0u8; 8 * BLOCK_LEN];
        let mut lens = [0u32; 8];
        while i + 8 <= n {
            for j in 0..8 {
                let input = get(i + j);
                let dst = &mut blocks[j * BLOCK_LEN..(j + 1) * BLOCK_LEN];
                dst[..input.len()].copy_from_slice(input);
                dst[input.len()..].fill(0);
                lens[j] = input.len() as u32;
            }
            // SAFETY: AVX2 was detected at run time; buffer sizes are fixed above.
            unsafe {
                avx2::hash8(
                    key,
                    &blocks,
                    &lens,
                    &mut out[i * OUT_LEN..(i + 8) * OUT_LEN],
                )
            };
            i += 8;
        }
    }
    while i < n {
        out[i * OUT_LEN..(i + 1) * OUT_LEN].copy_from_slice(&hash_one(key, get(i)));
        i += 1;
    }
}

/// Hashes consecutive 64-byte blocks of `data` (the pairs of one Merkle
/// level), one 32-byte output per block.
pub fn hash_pairs(key: &[u32; 8], data: &[u8], out: &mut [u8]) {
    let n = data.len() / BLOCK_LEN;
    assert_eq!(data.len(), n * BLOCK_LEN);
    assert_eq!(out.len(), n * OUT_LEN);
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        let lens = [BLOCK_LEN as u32; 8];
        while i + 8 <= n {
            // SAFETY: AVX2 detected; 8 blocks of input and 8 outputs are in range.
            unsafe {
                avx2::hash8(
                    key,
                    &data[i * BLOCK_LEN..(i + 8) * BLOCK_LEN],
                    &lens,
                    &mut out[i * OUT_LEN..(i + 8) * OUT_LEN],
                )
            };
            i += 8;
        }
    }
    while i < n {
        let h = hash_one(key, &data[i * BLOCK_LEN..(i + 1) * BLOCK_LEN]);
        out[i * OUT_LEN..(i + 1) * OUT_LEN].copy_from_slice(&h);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_block_matches_blake3_keyed_hash() {
        let key = *blake3::hash(b"test key").as_bytes();
        let kw = key_words(&key);
        for len in 0..=64usize {
            let input: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            assert_eq!(
                hash_one(&kw, &input),
                *blake3::keyed_hash(&key, &input).as_bytes()
            );
        }
    }

    #[test]
    fn many_matches_one_by_one() {
        let key = *blake3::hash(b"k2").as_bytes();
        let kw = key_words(&key);
        for n in [0usize, 1, 7, 8, 9, 17, 64, 100] {
            let inputs: Vec<Vec<u8>> = (0..n)
                .map(|i| (0..(i * 13) % 65).map(|j| (i + j) as u8).collect())
                .collect();
            let mut out = vec![0u8; n * OUT_LEN];
            hash_many(&kw, n, |i| &inputs[i], &mut out);
            for i in 0..n {
                assert_eq!(
                    &out[i * 32..(i + 1) * 32],
                    blake3::keyed_hash(&key, &inputs[i]).as_bytes()
                );
            }
        }
    }

    #[test]
    fn pairs_match_one_by_one() {
        let key = *blake3::hash(b"k3").as_bytes();
        let kw = key_words(&key);
        let data: Vec<u8> = (0..64 * 19).map(|i| (i * 31 % 251) as u8).collect();
        let mut out = vec![0u8; 19 * OUT_LEN];
        hash_pairs(&kw, &data, &mut out);
        for i in 0..19 {
            let want = blake3::keyed_hash(&key, &data[i * 64..(i + 1) * 64]);
            assert_eq!(&out[i * 32..(i + 1) * 32], want.as_bytes());
        }
    }
}
#[cfg(test)]
mod speed {
    #[test]
    #[ignore]
    fn pairs_speed() {
        let key = [7u32; 8];
        let n = 1 << 20;
        let data = vec![3u8; n * 64];
        let mut out = vec![0u8; n * 32];
        for _ in 0..3 {
            let t = std::time::Instant::now();
            super::hash_pairs(&key, &data, &mut out);
            eprintln!(
                "pairs: {:.1} ns each",
                t.elapsed().as_nanos() as f64 / n as f64
            );
            let t = std::time::Instant::now();
            super::hash_many(&key, n, |i| &data[i * 32..i * 32 + 32], &mut out);
            eprintln!(
                "many: {:.1} ns each",
                t.elapsed().as_nanos() as f64 / n as f64
            );
        }
    }
}
