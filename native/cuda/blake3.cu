// BLAKE3 on the GPU for the PoUW miner (docs/pouw.md): the per-attempt noise
// factors read from BLAKE3's XOF, and the Merkle root of the transcript's
// leaves (docs/consensus.md, "Merkle trees") — byte for byte what the host
// computes (`bcai.pouw._noise`, `bcai.crypto.merkle_root_packed`).
//
// Both are one-block compressions: an XOF output block i of the hash of a
// 32-byte message is compress(IV, message, counter i, 32 bytes, ROOT | CHUNK
// flags); a Merkle leaf or node is a keyed hash of at most 64 bytes, one
// compression under K_leaf / K_node. So a thread per output block.

#define CHUNK_START 1u
#define CHUNK_END 2u
#define ROOT 8u
#define KEYED_HASH 16u

__constant__ unsigned IV[8] = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                               0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};

// BLAKE3's message permutation, applied to the message words in registers
// between rounds (every index a compile-time constant: a table in constant
// memory indexed per round put the 16 words in local memory)
__device__ __forceinline__ void permute(unsigned* m) {
    const unsigned t0 = m[0], t1 = m[1], t2 = m[2], t3 = m[3], t4 = m[4], t5 = m[5], t6 = m[6],
                   t7 = m[7], t8 = m[8], t9 = m[9], t10 = m[10], t11 = m[11], t12 = m[12],
                   t13 = m[13], t14 = m[14], t15 = m[15];
    m[0] = t2, m[1] = t6, m[2] = t3, m[3] = t10, m[4] = t7, m[5] = t0, m[6] = t4, m[7] = t13;
    m[8] = t1, m[9] = t11, m[10] = t12, m[11] = t5, m[12] = t9, m[13] = t14, m[14] = t15, m[15] = t8;
}

__device__ __forceinline__ unsigned rotr(unsigned x, int n) { return __funnelshift_r(x, x, n); }

__device__ __forceinline__ void g(unsigned* v, int a, int b, int c, int d, unsigned x, unsigned y) {
    v[a] = v[a] + v[b] + x;
    v[d] = rotr(v[d] ^ v[a], 16);
    v[c] = v[c] + v[d];
    v[b] = rotr(v[b] ^ v[c], 12);
    v[a] = v[a] + v[b] + y;
    v[d] = rotr(v[d] ^ v[a], 8);
    v[c] = v[c] + v[d];
    v[b] = rotr(v[b] ^ v[c], 7);
}

// the full 64-byte output of one compression
__device__ void compress(const unsigned* cv, const unsigned* m, unsigned long long counter,
                         unsigned len, unsigned flags, unsigned* out) {
    unsigned v[16];
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = cv[i];
#pragma unroll
    for (int i = 0; i < 4; ++i) v[8 + i] = IV[i];
    v[12] = (unsigned)counter;
    v[13] = (unsigned)(counter >> 32);
    v[14] = len;
    v[15] = flags;
    unsigned w[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) w[i] = m[i];
#pragma unroll
    for (int r = 0; r < 7; ++r) {
        g(v, 0, 4, 8, 12, w[0], w[1]);
        g(v, 1, 5, 9, 13, w[2], w[3]);
        g(v, 2, 6, 10, 14, w[4], w[5]);
        g(v, 3, 7, 11, 15, w[6], w[7]);
        g(v, 0, 5, 10, 15, w[8], w[9]);
        g(v, 1, 6, 11, 12, w[10], w[11]);
        g(v, 2, 7, 8, 13, w[12], w[13]);
        g(v, 3, 4, 9, 14, w[14], w[15]);
        if (r < 6) permute(w);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        out[i] = v[i] ^ v[i + 8];
        out[i + 8] = v[i + 8] ^ cv[i];
    }
}

// A sparse factor's row (r = 128, g = 2) from one XOF block: byte j sets ±1
// (even +1, odd −1) at column 2j + ((byte >> 1) & 1), so in word j / 2 (every
// register index known at compile time: no local memory).
__device__ __forceinline__ void sparse_row(const unsigned* word, uint4* dst) {
    unsigned row[32];  // 128 entries, four to a word
#pragma unroll
    for (int w = 0; w < 32; ++w) row[w] = 0;
#pragma unroll
    for (int j = 0; j < 64; ++j) {
        const unsigned byte = (word[j >> 2] >> (8 * (j & 3))) & 0xFF;
        const unsigned c = 2 * j + ((byte >> 1) & 1);
        row[j >> 1] |= ((byte & 1) ? 0xFFu : 0x01u) << (8 * (c & 3));
    }
#pragma unroll
    for (int v = 0; v < 8; ++v) dst[v] = make_uint4(row[4 * v], row[4 * v + 1], row[4 * v + 2], row[4 * v + 3]);
}

// XOF block `blk` of the factor with key `key` into `out` (see bcai_noise).
__device__ __forceinline__ void noise_block(const unsigned* __restrict__ key, bool sparse, int cols,
                                            long long entries, long long blk, signed char* out) {
    unsigned m[16], word[16];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        m[i] = key[i];
        m[8 + i] = 0;
    }
    compress(IV, m, (unsigned long long)blk, 32, CHUNK_START | CHUNK_END | ROOT, word);
    if (sparse) {  // cols = r = 128 (noise_spec)
        sparse_row(word, (uint4*)(out + blk * cols));
        return;
    }
    unsigned expanded[64];  // entry 4b + q is the 2-bit code q of byte b
#pragma unroll
    for (int b = 0; b < 64; ++b) {
        const unsigned byte = (word[b >> 2] >> (8 * (b & 3))) & 0xFF;
        unsigned w = 0;
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const unsigned two = (byte >> (2 * q)) & 3;
            w |= (two == 1 ? 0x01u : two == 2 ? 0xFFu : 0u) << (8 * q);
        }
        expanded[b] = w;
    }
    const long long first = blk * 256;
    if (first + 256 <= entries) {
        uint4* dst = (uint4*)(out + first);
#pragma unroll
        for (int v = 0; v < 16; ++v)
            dst[v] = make_uint4(expanded[4 * v], expanded[4 * v + 1], expanded[4 * v + 2], expanded[4 * v + 3]);
        return;
    }
#pragma unroll
    for (int e = 0; e < 256; ++e)  // the last, partial block
        if (first + e < entries) out[first + e] = (signed char)((expanded[e >> 2] >> (8 * (e & 3))) & 0xFF);
}

// One noise factor per blockIdx.y (0 … 3), from the XOF of the hash of the
// 32-byte key keys[8·f … 8·f + 7] (derive_key(context, σ)), written in the
// order it is generated (row-major). shape[f] = (rows, cols, sparse): dense
// factors take 2 bits per entry (TERNARY: 00, 11 → 0, 01 → 1, 10 → −1), a
// thread expanding one 64-byte XOF block into 256 entries; sparse ones
// (cols = r = 128: g = 2) a thread per row i, from XOF block i: byte j sets
// ±1 (even +1, odd −1) at column j·g + ((byte >> 1) & (g − 1)). Rows are
// assembled in registers and stored 16 bytes at a time. Any grid covers
// the blocks (a thread takes every gridDim.x·blockDim.x-th), so a small
// one leaves SMs to a kernel beside it.
extern "C" __global__ void bcai_noise(const unsigned* __restrict__ keys, const int* __restrict__ shape,
                                      signed char* f0, signed char* f1, signed char* f2,
                                      signed char* f3) {
    const int f = blockIdx.y;
    const int rows = shape[3 * f], cols = shape[3 * f + 1];
    const bool sparse = shape[3 * f + 2] != 0;
    signed char* out = f == 0 ? f0 : f == 1 ? f1 : f == 2 ? f2 : f3;
    const long long entries = (long long)rows * cols;
    const long long blocks = sparse ? rows : (entries + 255) / 256;
    const long long stride = (long long)gridDim.x * blockDim.x;  // a grid of any size covers them
    const long long start = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (sparse)
        for (long long blk = start; blk < blocks; blk += stride) noise_block(keys + 8 * f, true, cols, entries, blk, out);
    else
        for (long long blk = start; blk < blocks; blk += stride) noise_block(keys + 8 * f, false, cols, entries, blk, out);
}

__device__ __forceinline__ void node(const unsigned* key, const unsigned* left, const unsigned* right,
                                     unsigned* out) {
    unsigned m[16], w[16];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        m[i] = left[i];
        m[8 + i] = right[i];
    }
    compress(key, m, 0, 64, CHUNK_START | CHUNK_END | ROOT | KEYED_HASH, w);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = w[i];
}

#ifndef SPAN
#define SPAN 2048  // hashes reduced by one thread block of SPAN / 2 threads (as _device_hash.SPAN)
#endif

// The leaf hash of one leaf_bytes-byte leaf (1 … 64) at p.
__device__ __forceinline__ void leaf_hash(const unsigned* key, const unsigned char* p, int leaf_bytes,
                                          unsigned* out) {
    unsigned m[16], w[16];
    if (leaf_bytes == 4 && ((unsigned long long)p & 3) == 0) {  // the transcript's leaves
        m[0] = *(const unsigned*)p;
#pragma unroll
        for (int i = 1; i < 16; ++i) m[i] = 0;
    } else {
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            unsigned x = 0;
#pragma unroll
            for (int q = 0; q < 4; ++q)
                if (4 * i + q < leaf_bytes) x |= (unsigned)p[4 * i + q] << (8 * q);
            m[i] = x;
        }
    }
    compress(key, m, 0, (unsigned)leaf_bytes, CHUNK_START | CHUNK_END | ROOT | KEYED_HASH, w);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = w[i];
}

// The root of `size` (≤ SPAN) consecutive hashes from `first` — the leaf hashes of `leaves`
// (leaf_bytes each) when leaf_bytes > 0, else the 32-byte hashes of `nodes` — into level[·][0], by
// a block of SPAN / 2 threads: a thread takes hashes 2t and 2t + 1 and joins them in registers,
// then one node a thread per level through shared memory (an unpaired last node carried up).
__device__ void span_root(const unsigned char* __restrict__ leaves, int leaf_bytes,
                          const unsigned* __restrict__ nodes, long long first, int size,
                          const unsigned* __restrict__ keys, unsigned (*level)[SPAN / 2]) {
    const unsigned* key_leaf = keys;
    const unsigned* key_node = keys + 8;
    const int t = threadIdx.x;
    unsigned h[2][8];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
        if (2 * t + j >= size) break;
        if (leaf_bytes > 0) {
            leaf_hash(key_leaf, leaves + (first + 2 * t + j) * leaf_bytes, leaf_bytes, h[j]);
        } else {  // written by other blocks of this launch when fused: read past L1
#pragma unroll
            for (int i = 0; i < 8; ++i) h[j][i] = __ldcg(nodes + (first + 2 * t + j) * 8 + i);
        }
    }
    if (2 * t + 1 < size) node(key_node, h[0], h[1], h[0]);
    if (2 * t < size)
#pragma unroll
        for (int i = 0; i < 8; ++i) level[i][t] = h[0][i];
    __syncthreads();
    int width = (size + 1) / 2;  // hashes in `level`
    while (width > 1) {
        const int pairs = width / 2;
        unsigned l[8], r[8], x[8];
        if (t < pairs) {
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                l[i] = level[i][2 * t];
                r[i] = level[i][2 * t + 1];
            }
            node(key_node, l, r, x);
        }
        __syncthreads();
        if (t < pairs)
#pragma unroll
            for (int i = 0; i < 8; ++i) level[i][t] = x[i];
        if (width & 1 && t == 0)
#pragma unroll
            for (int i = 0; i < 8; ++i) level[i][pairs] = level[i][width - 1];
        __syncthreads();
        width = pairs + (width & 1);
    }
}

// One pass of the RFC 6962-shaped tree, built bottom-up: a block (SPAN / 2 threads) writes the
// root of each aligned span of SPAN hashes it takes (span blockIdx.x, then every gridDim.x-th;
// leaves when leaf_bytes > 0, else `nodes`) to `out`.
// Spans are aligned powers of two, so their roots are the tree's nodes SPAN levels up; the host
// repeats until one is left. With `fuse` (the roots are at most SPAN), the block that finishes
// last also reduces them into `root` — the last pass without a launch of its own; `counter`
// (zero) counts the finished blocks and is left at zero again.
extern "C" __global__ void __launch_bounds__(SPAN / 2)
    bcai_merkle_span(const unsigned char* __restrict__ leaves, int leaf_bytes,
                     const unsigned* __restrict__ nodes, long long count, const unsigned* __restrict__ keys,
                     unsigned* __restrict__ out, unsigned* counter, unsigned* root, int fuse) {
    __shared__ unsigned level[8][SPAN / 2];  // word i of hash t at [i][t]: no bank conflicts
    __shared__ bool last;
    const int t = threadIdx.x;
    const long long spans = (count + SPAN - 1) / SPAN;
    for (long long span = blockIdx.x; span < spans; span += gridDim.x) {  // any grid covers them
        const long long first = span * SPAN;
        span_root(leaves, leaf_bytes, nodes, first, (int)min((long long)SPAN, count - first), keys, level);
        if (t < 8) out[span * 8 + t] = level[t][0];
        __syncthreads();  // read before the next span's hashes are written
    }
    if (!fuse) return;
    __threadfence();  // this block's root, seen by the last block before it counts this one
    __syncthreads();
    if (t == 0) last = atomicAdd(counter, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    span_root(nullptr, 0, out, 0, (int)spans, keys, level);
    if (t < 8) root[t] = level[t][0];
    if (t == 0) *counter = 0;  // for the next launch (a recorded graph replays this one)
}
