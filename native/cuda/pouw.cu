// The PoUW transcript on the GPU (docs/pouw.md): the same leaves as the
// Rust miner and the NumPy reference, byte for byte.
//
// One thread block per b×b output tile (b = 4 … 64), (b/4)² threads,
// each holding a 4×4 block of the tile's int32 accumulator in registers for
// the whole inner dimension. Per b-wide slice: the slice of A' (b rows) and
// of B'ᵀ (b rows) is staged in shared memory as packed int8×4 words, the
// products run on __dp4a, then every thread digests its 16 entries,
// y = (x + κ + e·0x9E3779B9) mod 2^32 and d += (y XOR λ)·y' (mod 2^32) for
// each entry of an even column, y' its right neighbour's, and
// the block sums the digests (addition mod 2^32: any order gives the same
// leaf). The tensor-core kernel is bcai/mining/_triton.py (tiles 64, 128).
// (A kernel may as well start its accumulator at κ + e·0x9E3779B9 instead
// of 0: int32 accumulation wraps mod 2^32, so it then holds y directly.)

extern "C" __global__ void bcai_pouw_transcript(
    const signed char* __restrict__ A,   // n×k, row-major
    const signed char* __restrict__ BT,  // m×k, row-major (B' transposed)
    unsigned int* __restrict__ leaves,
    int n, int k, int m, int tile, unsigned int key, unsigned int mask)
{
    extern __shared__ int smem[];
    const int q = tile / 4;        // packed words per row of a slice
    const int stride = q + 1;      // padded: no bank conflicts on column reads
    int* As = smem;
    int* Bs = smem + tile * stride;
    unsigned int* red = (unsigned int*)(Bs + tile * stride);
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int nt = blockDim.x * blockDim.y, tid = ty * blockDim.x + tx;
    const int I = blockIdx.y, J = blockIdx.x;
    const long long i0 = (long long)I * tile, j0 = (long long)J * tile;
    const int steps = k / tile;
    const long long tiles = (long long)(n / tile) * (m / tile);
    int acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0;
    for (int step = 0; step < steps; ++step) {
        const long long k0 = (long long)step * tile;
        for (int e = tid; e < tile * q; e += nt) {
            const int r = e / q, c = e % q;
            As[r * stride + c] = *(const int*)(A + (i0 + r) * k + k0 + 4 * c);
            Bs[r * stride + c] = *(const int*)(BT + (j0 + r) * k + k0 + 4 * c);
        }
        __syncthreads();
        for (int c = 0; c < q; ++c) {
            int a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[(ty + i * q) * stride + c];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = Bs[(tx + j * q) * stride + c];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = __dp4a(a[i], b[j], acc[i][j]);
        }
        // Σ (y_2i XOR λ)·y_2i+1 over pairs of neighbouring columns: with q = 1 a thread holds
        // the whole 4×4 tile; else column c's neighbour c XOR 1 (q even) is the same (i, j)
        // entry of the thread tx XOR 1 — the next lane (tid = ty·q + tx)
        unsigned int d = 0;
        const unsigned int lanes = nt >= 32 ? 0xFFFFFFFFu : (1u << nt) - 1u;
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const unsigned int e = (unsigned int)((ty + i * q) * tile + tx + j * q);
                const unsigned int y = (unsigned int)acc[i][j] + (key + e * 0x9E3779B9u);
                if (q == 1) {
                    if (j % 2 == 0) {
                        const unsigned int next = (unsigned int)acc[i][j + 1] + (key + (e + 1) * 0x9E3779B9u);
                        d += (y ^ mask) * next;
                    }
                } else {
                    const unsigned int next = __shfl_xor_sync(lanes, y, 1);
                    if ((tx & 1) == 0) d += (y ^ mask) * next;
                }
            }
        red[tid] = d;
        __syncthreads();
        for (int s = nt / 2; s > 0; s >>= 1) {
            if (tid < s) red[tid] += red[tid + s];
            __syncthreads();
        }
        if (tid == 0) leaves[(long long)step * tiles + (long long)I * (m / tile) + J] = red[0];
        __syncthreads();
    }
}
