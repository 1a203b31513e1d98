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

// the message word order of each of the 7 rounds (the permutation applied
// round after round)
__constant__ unsigned char SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

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
#pragma unroll
    for (int r = 0; r < 7; ++r) {
        const unsigned char* s = SCHEDULE[r];
        g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
        g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
        g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
        g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
        g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
        g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
        g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
        g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        out[i] = v[i] ^ v[i + 8];
        out[i + 8] = v[i + 8] ^ cv[i];
    }
}

// One noise factor per blockIdx.y (0 … 3), from the XOF of the hash of the
// 32-byte key keys[8·f … 8·f + 7] (derive_key(context, σ)), written in the
// order it is generated (row-major). shape[f] = (rows, cols, sparse): dense
// factors take 2 bits per entry (TERNARY: 00, 11 → 0, 01 → 1, 10 → −1), a
// thread expanding one 64-byte XOF block into 256 entries; sparse ones
// (cols = r = 64·g ≤ 128) a thread per row i, from XOF block i: byte j sets
// ±1 (even +1, odd −1) at column j·g + ((byte >> 1) & (g − 1)). Rows are
// assembled in registers and stored 16 bytes at a time.
extern "C" __global__ void bcai_noise(const unsigned* __restrict__ keys, const int* __restrict__ shape,
                                      signed char* f0, signed char* f1, signed char* f2,
                                      signed char* f3) {
    const int f = blockIdx.y;
    const int rows = shape[3 * f], cols = shape[3 * f + 1];
    const bool sparse = shape[3 * f + 2] != 0;
    signed char* out = f == 0 ? f0 : f == 1 ? f1 : f == 2 ? f2 : f3;
    const long long entries = (long long)rows * cols;
    const long long blocks = sparse ? rows : (entries + 255) / 256;
    const long long blk = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (blk >= blocks) return;
    unsigned m[16], word[16];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        m[i] = keys[8 * f + i];
        m[8 + i] = 0;
    }
    compress(IV, m, (unsigned long long)blk, 32, CHUNK_START | CHUNK_END | ROOT, word);
    if (sparse) {
        const int g = cols / 64;
        unsigned row[32];  // cols <= 128 entries, four to a word
#pragma unroll
        for (int w = 0; w < 32; ++w) row[w] = 0;
        for (int j = 0; j < 64; ++j) {
            const unsigned byte = (word[j >> 2] >> (8 * (j & 3))) & 0xFF;
            const int c = j * g + ((byte >> 1) & (g - 1));
            row[c >> 2] |= ((byte & 1) ? 0xFFu : 0x01u) << (8 * (c & 3));
        }
        uint4* dst = (uint4*)(out + blk * cols);
        for (int v = 0; v < cols / 16; ++v)
            dst[v] = make_uint4(row[4 * v], row[4 * v + 1], row[4 * v + 2], row[4 * v + 3]);
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
    for (long long e = first; e < entries; ++e)
        out[e] = (signed char)((expanded[(e - first) >> 2] >> (8 * ((e - first) & 3))) & 0xFF);
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

#define SPAN 512  // hashes reduced by one thread block (256 threads)

// One level-group of the RFC 6962-shaped tree, built bottom-up (an unpaired
// last node carried up unchanged): each thread block takes SPAN consecutive
// hashes — the leaf hashes of `leaves` (leaf_bytes each) when leaf_bytes > 0,
// else the 32-byte hashes of `nodes` — and writes the root of its aligned
// span. Spans are aligned powers of two, so the roots of the spans are the
// tree's nodes SPAN levels up; the host repeats until one is left.
extern "C" __global__ void bcai_merkle_span(const unsigned char* __restrict__ leaves, int leaf_bytes,
                                            const unsigned* __restrict__ nodes, long long count,
                                            const unsigned* __restrict__ keys, unsigned* __restrict__ out) {
    __shared__ unsigned level[SPAN][8];
    const long long first = (long long)blockIdx.x * SPAN;
    int size = (int)min((long long)SPAN, count - first);
    const unsigned* key_leaf = keys;
    const unsigned* key_node = keys + 8;
    for (int t = threadIdx.x; t < size; t += blockDim.x) {
        if (leaf_bytes > 0) {
            unsigned m[16] = {0}, w[16];
            const unsigned char* p = leaves + (first + t) * leaf_bytes;
            for (int b = 0; b < leaf_bytes; ++b) m[b >> 2] |= (unsigned)p[b] << (8 * (b & 3));
            compress(key_leaf, m, 0, (unsigned)leaf_bytes, CHUNK_START | CHUNK_END | ROOT | KEYED_HASH, w);
#pragma unroll
            for (int i = 0; i < 8; ++i) level[t][i] = w[i];
        } else {
#pragma unroll
            for (int i = 0; i < 8; ++i) level[t][i] = nodes[(first + t) * 8 + i];
        }
    }
    __syncthreads();
    while (size > 1) {
        const int pairs = size / 2;
        unsigned h[2][8];
        int mine = 0;
        for (int p = threadIdx.x; p < pairs; p += blockDim.x, ++mine) node(key_node, level[2 * p], level[2 * p + 1], h[mine]);
        __syncthreads();
        mine = 0;
        for (int p = threadIdx.x; p < pairs; p += blockDim.x, ++mine)
#pragma unroll
            for (int i = 0; i < 8; ++i) level[p][i] = h[mine][i];
        if (size & 1 && threadIdx.x == 0)
#pragma unroll
            for (int i = 0; i < 8; ++i) level[pairs][i] = level[size - 1][i];
        __syncthreads();
        size = pairs + (size & 1);
    }
    if (threadIdx.x < 8) out[blockIdx.x * 8 + threadIdx.x] = level[0][threadIdx.x];
}
