// bcai's GEMM for the CuPy backend: C[b] = A[b] · B[b] for float or double
// operands with any element strides (transposed views need no copy), C
// contiguous. Written here because CuPy refuses to call cuBLAS while a
// stream is captured into a CUDA graph, and because its reduction order is
// fixed: every C element is one thread's fma chain over k = 0, 1, ..., K−1,
// whatever the tiling or the card, so a run repeats bit for bit.
//
// Tiles: a 16×16 thread block computes a 64×64 tile of C (4×4 per thread),
// staging 64×16 slices of A and 16×64 slices of B in shared memory.
//
// Split K: when C has few tiles and K is long (weight gradients), block z
// = b·splits + s sums k in [s·kps, (s+1)·kps) into partial s, and
// bcai_sum_splits adds the partials in order s = 0, 1, ... The split count
// is a function of the shape alone, so the order stays fixed.

template <typename T>
__device__ __forceinline__ void gemm_tile(
    const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C,
    int M, int N, int K,
    long long sa_b, long long sa0, long long sa1,
    long long sb_b, long long sb0, long long sb1,
    int batch, int splits, int kps)
{
    __shared__ T As[16][65];
    __shared__ T Bs[16][65];
    const long long bz = blockIdx.z / splits, split = blockIdx.z % splits;
    A += bz * sa_b;
    B += bz * sb_b;
    C += (split * batch + bz) * (long long)M * N;
    const int kbegin = split * kps, kend = min(K, kbegin + kps);
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
    T acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0;
    for (int k0 = kbegin; k0 < kend; k0 += 16) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int e = tid + i * 256;
            const int mm = e >> 4, kk = e & 15;
            const int gm = m0 + mm, gk = k0 + kk;
            As[kk][mm] = (gm < M && gk < kend) ? A[gm * sa0 + gk * sa1] : T(0);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int e = tid + i * 256;
            const int kk = e >> 6, nn = e & 63;
            const int gk = k0 + kk, gn = n0 + nn;
            Bs[kk][nn] = (gk < kend && gn < N) ? B[gk * sb0 + gn * sb1] : T(0);
        }
        __syncthreads();
        const int kmax = min(16, kend - k0);  // padding never enters a sum
        for (int kk = 0; kk < kmax; ++kk) {
            T a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int gm = m0 + ty + 16 * i;
        if (gm >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int gn = n0 + tx + 16 * j;
            if (gn < N) C[(long long)gm * N + gn] = acc[i][j];
        }
    }
}

extern "C" __global__ void bcai_sgemm(
    const float* A, const float* B, float* C, int M, int N, int K,
    long long sa_b, long long sa0, long long sa1,
    long long sb_b, long long sb0, long long sb1, int batch, int splits, int kps)
{
    gemm_tile<float>(A, B, C, M, N, K, sa_b, sa0, sa1, sb_b, sb0, sb1, batch, splits, kps);
}

extern "C" __global__ void bcai_dgemm(
    const double* A, const double* B, double* C, int M, int N, int K,
    long long sa_b, long long sa0, long long sa1,
    long long sb_b, long long sb0, long long sb1, int batch, int splits, int kps)
{
    gemm_tile<double>(A, B, C, M, N, K, sa_b, sa0, sa1, sb_b, sb0, sb1, batch, splits, kps);
}

template <typename T>
__device__ __forceinline__ void sum_splits(const T* P, T* C, long long size, int splits)
{
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= size) return;
    T acc = P[i];
    for (int s = 1; s < splits; ++s) acc += P[s * size + i];
    C[i] = acc;
}

extern "C" __global__ void bcai_ssum_splits(const float* P, float* C, long long size, int splits)
{
    sum_splits<float>(P, C, size, splits);
}

extern "C" __global__ void bcai_dsum_splits(const double* P, double* C, long long size, int splits)
{
    sum_splits<double>(P, C, size, splits);
}
