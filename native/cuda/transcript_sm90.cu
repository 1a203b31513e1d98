// The PoUW transcript on Hopper's tensor cores, written by hand (sm_90a):
// the same leaves as bcai/mining/_triton.py, the Rust miner and the NumPy
// reference (docs/pouw.md), byte for byte.
//
// A persistent kernel, one block per SM of CONSUMERS + 1 warpgroups, 128×128 output tiles
// (b = 128). One warp of the last warpgroup streams the b-wide slices of A' (128 rows × 128
// bytes) and B'ᵀ (128 rows × 128 bytes) into shared memory with the bulk tensor copy engine (TMA,
// 128-byte swizzle). The consumer warpgroups take the block's tiles in turn, each a whole tile
// (128 accumulator registers a thread, raised by setmaxnreg) with a ring of RING stages of its
// own, and multiply with wgmma (m64n128k32, s8 × s8 → s32, operands in shared memory). They take
// turns at the tensor cores (named barriers): a warpgroup issues a slice's product (two halves
// of 64 rows), hands the turn over once the first half is done, digests that half while the
// second is multiplied, then the second while the other warpgroups' slices are multiplied. The
// digest of the accumulator y = S_ℓ + κ + e·φ is Σ (y_2i XOR λ)·y_2i+1 mod 2^32 over pairs of
// neighbouring columns — one XOR and one multiply-add a pair (docs/pouw.md); a leaf is the sum of its tile's four warps' digests (one
// shared-memory atomic a warp, added under the next slice's products), written when the tile is
// done. The transcript runs with three consumers (the second half's digest then has two other
// warpgroups' products to hide under, not one), the bare product with two (RING 3: it is
// fastest so); bcai/mining/_sm90.py builds the source for each.
//
// bcai_product_sm90 is the same kernel without the digest, storing C: the
// bare product the transcript is measured against.
//
// bcai_noisy_sm90 forms both noisy operands, out = base + left·rightᵀ as
// int8 (A' = A + E_L·E_R from E_L and E_Rᵀ; B'ᵀ = Bᵀ + F_Rᵀ·F_L from F_Rᵀ
// and F_L; r = 128): persistent warpgroups over the 128×128 tiles, the
// factors' rows and the base tile in by TMA (the next tile's under this
// one's work), one wgmma slice, the sum written over the base tile in shared
// memory and out by TMA.

typedef unsigned int u32;
typedef unsigned long long u64;

#define TILE 128
#define HALF 64            // rows of one wgmma (m64)
#ifndef CONSUMERS
#define CONSUMERS 2        // consumer warpgroups a block (2 or 3), taking turns at the tensor cores
#endif
#define RING (CONSUMERS == 2 ? 3 : 2)  // stages per consumer warpgroup: C × RING × 32 KiB ≤ 192 KiB
#define THREADS (128 * (CONSUMERS + 1))
#define STAGE_BYTES (2 * TILE * TILE)
#define MAX_SLICES 256     // k <= 32768
#define GROUP 8            // tile rows per group: blocks running together share A' and B' in L2
#define PHI 0x9E3779B9u
#define NOISY_STAGE (3 * TILE * TILE)  // noisy operands: the factors' rows and the base tile

extern __shared__ unsigned char raw[];  // dynamic shared memory, each kernel's layout its own

__device__ __forceinline__ u32 smem(const void* p) { return (u32)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void bar_init(u64* bar, u32 count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem(bar)), "r"(count));
}

// the spin loop inside the asm: to the compiler no divergent loop, so what follows may stay on
// the uniform datapath
__device__ __forceinline__ void bar_wait(u64* bar, u32 parity) {
    asm volatile(
        "{\n .reg .pred p;\n WAIT:\n"
        " mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
        " @!p bra WAIT;\n}"
        ::"r"(smem(bar)), "r"(parity) : "memory");
}

__device__ __forceinline__ void bar_arrive(u64* bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem(bar)) : "memory");
}

__device__ __forceinline__ void bar_expect(u64* bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem(bar)), "r"(bytes)
                 : "memory");
}

__device__ __forceinline__ void tma_load(void* dst, const void* map, u64* bar, int x, int y) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2, %3}], [%4];"
        ::"r"(smem(dst)), "l"((u64)map), "r"(x), "r"(y), "r"(smem(bar)) : "memory");
}

// a K-major operand of 128-byte rows in 128-byte swizzle: 8-row groups 1024 bytes apart
// (start address >> 4, leading byte offset 1 — unused when swizzled — stride 1024 >> 4, 128-byte swizzle)
__device__ __forceinline__ u64 operand(u32 addr) {
    const u32 lo = ((addr & 0x3FFFF) >> 4) | (1u << 16), hi = (1024 >> 4) | (1u << 30);
    return ((u64)hi << 32) | lo;
}

__device__ __forceinline__ void mma(u32 (&d)[64], u64 a, u64 b, int accumulate) {
    asm volatile(
        "{\n .reg .pred p;\n setp.ne.b32 p, %66, 0;\n"
        " wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8\n"
        " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63},\n %64, %65, p;\n}"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
          "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]),
          "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]),
          "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]),
          "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]),
          "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]),
          "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]),
          "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
        : "l"(a), "l"(b), "r"(accumulate));
}

// the registers' values are fixed here: the compiler moves no access to them across
__device__ __forceinline__ void pin(u32 (&d)[64]) {
#pragma unroll
    for (int i = 0; i < 64; ++i) asm volatile("" : "+r"(d[i])::"memory");
}

__device__ __forceinline__ void mma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void mma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void mma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"); }

// a 64-row block of a 128-deep slice: four k32 steps over a stage
__device__ __forceinline__ void slice(u32 (&d)[64], u32 a, u32 b, int accumulate) {
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) mma(d, operand(a + 32 * kk), operand(b + 32 * kk), accumulate || kk > 0);
}

__device__ __forceinline__ void place(int t, int num_i, int num_j, int& pi, int& pj) {
    const int width = GROUP * num_j, first = (t / width) * GROUP;
    const int size = min(num_i - first, GROUP);
    pi = first + (t % width) % size;
    pj = (t % width) / size;
}

__device__ __forceinline__ void init_barriers(u64* full, u64* empty, int count, u32 consumers) {
    for (int s = 0; s < count; ++s) {
        bar_init(&full[s], 1);
        bar_init(&empty[s], consumers);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

__device__ __forceinline__ void named_sync(int id) { asm volatile("bar.sync %0, 256;" ::"r"(id) : "memory"); }
__device__ __forceinline__ void named_arrive(int id) { asm volatile("bar.arrive %0, 256;" ::"r"(id) : "memory"); }

#ifndef DIGEST_FORM  // 0: the digest of docs/pouw.md; others only to time what it costs
#define DIGEST_FORM 0   // (tools/time_digest_forms.py: their leaves are not the transcript's)
#endif

// v + x·y mod 2^32, opaque to the compiler: it may not fold the digest's separate sums into one
// chain of dependent multiply-adds (it did: 128 in a row)
__device__ __forceinline__ u32 product_add(u32 x, u32 y, u32 v) {
    u32 r;
    asm("mad.lo.u32 %0, %1, %2, %3;" : "=r"(r) : "r"(x), "r"(y), "r"(v));
    return r;
}

// Σ (y_2i XOR λ)·y_2i+1 mod 2^32 over a thread's 64 entries — 32 pairs of neighbouring columns
// (d[i], d[i + 1], i even) — in eight independent sums. Other forms (DIGEST_FORM), timed for the
// record: 1 v2's Σ (y XOR λ)² (a XOR and a multiply-add an entry), 2 the pairs each XORed with
// λ, 3 the pairs without λ
__device__ __forceinline__ u32 digest(const u32 (&d)[64], u32 mask) {
    u32 v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
    for (int i = 0; i < 64; i += 2) {
        if (DIGEST_FORM == 0) v[i % 8] = product_add(d[i] ^ mask, d[i + 1], v[i % 8]);
        if (DIGEST_FORM == 1) {
            v[i % 8] = product_add(d[i] ^ mask, d[i] ^ mask, v[i % 8]);
            v[(i + 1) % 8] = product_add(d[i + 1] ^ mask, d[i + 1] ^ mask, v[(i + 1) % 8]);
        }
        if (DIGEST_FORM == 2) v[i % 8] = product_add(d[i] ^ mask, d[i + 1] ^ mask, v[i % 8]);
        if (DIGEST_FORM == 3) v[i % 8] = product_add(d[i], d[i + 1], v[i % 8]);
    }
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

// Waits until the stage of a warpgroup's slice number `it` (counted over its tiles) is loaded;
// its shared-memory address
__device__ __forceinline__ u32 ready(u64* full, unsigned char* base, int wg, int it) {
    const int stage = wg * RING + it % RING;
    bar_wait(&full[stage], (it / RING) & 1);
    return smem(base + stage * STAGE_BYTES);
}

// Turns at the tensor cores: warpgroup 0 issues its slice i, then warpgroup 1 its slice i, … then
// 0 its slice i + 1. `items` counts each warpgroup's slices over its tiles: the counts fall with
// the warpgroup by at most one tile's, so a warpgroup with slice i has a predecessor with it. A
// warpgroup waits at barrier 2 + its number for its predecessor's first half to be done.
__device__ __forceinline__ int last_with(const int* items, int i) {  // the last warpgroup with slice i
    int w = 0;
#pragma unroll
    for (int v = 1; v < CONSUMERS; ++v)
        if (i < items[v]) w = v;
    return w;
}

__device__ __forceinline__ void wait_turn(int wg, int item, const int* items) {
    if (wg > 0)
        named_sync(2 + wg);
    else if (item > 0 && last_with(items, item - 1) != 0)  // (not after its own slice)
        named_sync(2);
}

__device__ __forceinline__ void give_turn(int wg, int item, const int* items) {
    if (wg + 1 < CONSUMERS && item < items[wg + 1])
        named_arrive(3 + wg);
    else if (wg != 0 && item + 1 < items[0])
        named_arrive(2);
}

// A consumer warpgroup WG: its tiles (r = WG, WG + C, …), each slice multiplied in its turn and digested
template <int DIGEST, int WG>
__device__ __forceinline__ void consume(unsigned char* base, u64* full, u64* empty, u32* parts, void* out,
                                        const u32* keys, int n, int k, int m, int mine, const int* items)
{
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, wg = WG;
    const int num_i = n / TILE, num_j = m / TILE, slices = k / TILE;
    // a consumer: lo[4j + 2h + c] is entry (row0 + 8h, 8j + col0 + c) of its tile, hi[...] 64 rows below
    const int row0 = (warp % 4) * 16 + lane / 4, col0 = 2 * (lane % 4);
    const u32 key = DIGEST ? keys[0] : 0u, mask = DIGEST ? keys[1] : 0u;
    const u32 first = key + (u32)(row0 * TILE + col0) * PHI;  // κ + e0·φ, e0 this thread's first entry
    u32* part = parts + wg * 2 * MAX_SLICES;
    u32 lo[64], hi[64];
    int item = 0, it = 0, parity = 0;
    for (int r = wg; r < mine; r += CONSUMERS) {
        int pi, pj;
        place(blockIdx.x + r * gridDim.x, num_i, num_j, pi, pj);
        // y starts at κ + e·φ (int32 sums wrap mod 2^32): κ + e0·φ plus constants. Opaque to
        // the compiler, so that it holds no start values in registers across the tiles
        u32 start = first;
        asm volatile("" : "+r"(start));
#pragma unroll
        for (int i = 0; i < 64; ++i) {
            const u32 e = (8 * ((i / 2) % 2)) * TILE + 8 * (i / 4) + i % 2;  // from e0
            lo[i] = DIGEST ? start + e * PHI : 0u;
            hi[i] = DIGEST ? start + (e + HALF * TILE) * PHI : 0u;
        }
        // A slice's first half is digested under its second half's product, its second half
        // under the other warpgroup's; the warp's sum of the two is reduced and added to the
        // leaf under the next slice's products, not between this slice's and the next issue.
        // (Digesting the second half after the next first half is issued would give it longer,
        // but with a product in flight across the loop's back edge ptxas serialises them all.)
        u32 held = 0;  // this warp's digest of slice s − 1 until its share of the leaf is added
        for (int s = 0; s < slices; ++s, ++item, ++it) {
            const int stage = wg * RING + it % RING;
            const u32 a = ready(full, base, wg, it), b = a + TILE * TILE;
            wait_turn(wg, item, items);
            mma_fence();
            pin(lo);
            pin(hi);
            slice(lo, a, b, 1);
            mma_commit();
            slice(hi, a + HALF * TILE, b, 1);
            mma_commit();
            if (DIGEST && s > 0) {  // slice s − 1's share of its leaf, under this slice's products
                held = __reduce_add_sync(0xffffffffu, held);
                if (lane == 0) atomicAdd(part + parity * MAX_SLICES + s - 1, held);
            }
            mma_wait<1>();  // the first half is done: the other warpgroup's slice may queue behind the second
            pin(lo);
            give_turn(wg, item, items);
            held = DIGEST ? digest(lo, mask) : 0u;  // under the second half's product:
            asm volatile("" : "+r"(held));          // done before the wait, not moved after it
            mma_wait<0>();
            pin(hi);
            if (lane == 0) bar_arrive(&empty[stage]);
            if (DIGEST) held += digest(hi, mask);
        }
        if (DIGEST) {  // the tile's last slice
            held = __reduce_add_sync(0xffffffffu, held);
            if (lane == 0) atomicAdd(part + parity * MAX_SLICES + slices - 1, held);
        }
        if (DIGEST) {
            asm volatile("bar.sync %0, 128;" ::"r"(8 + wg) : "memory");  // the tile's four warps are done
            u32* leaves = (u32*)out;
            for (int s = tid % 128; s < slices; s += 128) {
                leaves[((long long)s * num_i + pi) * num_j + pj] = part[parity * MAX_SLICES + s];
                part[parity * MAX_SLICES + s] = 0;
            }
            parity ^= 1;
        } else {
            int* c = (int*)out;
#pragma unroll
            for (int i = 0; i < 64; i += 2) {
                const long long row = (long long)pi * TILE + row0 + 8 * ((i / 2) % 2);
                const int col = pj * TILE + 8 * (i / 4) + col0;
                *(int2*)(c + row * m + col) = make_int2((int)lo[i], (int)lo[i + 1]);
                *(int2*)(c + (row + HALF) * m + col) = make_int2((int)hi[i], (int)hi[i + 1]);
            }
        }
    }
}

template <int DIGEST>  // 1: the transcript's leaves into `out` (u32); 0: C = A'·B' into `out` (int32, n×m)
__device__ __forceinline__ void body(
    const void* map_a, const void* map_b, void* out, const u32* keys, int n, int k, int m)
{
    unsigned char* base = raw + ((1024 - (smem(raw) & 1023)) & 1023);  // 128-byte swizzle: 1024-aligned
    u64* full = (u64*)(base + CONSUMERS * RING * STAGE_BYTES);  // [warpgroup][stage]
    u64* empty = full + CONSUMERS * RING;
    u32* parts = (u32*)(empty + CONSUMERS * RING);  // [warpgroup][parity][slice]: a tile's leaves
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int wg = __shfl_sync(0xffffffffu, warp / 4, 0);  // warp-uniform to the compiler
    const int num_i = n / TILE, num_j = m / TILE, tiles = num_i * num_j, slices = k / TILE;
    // this block's tiles t = blockIdx.x + r·gridDim.x; warpgroup r % C takes tile r
    const int mine = (tiles - (int)blockIdx.x + (int)gridDim.x - 1) / (int)gridDim.x;
    int items[CONSUMERS];  // slices each consumer multiplies
#pragma unroll
    for (int w = 0; w < CONSUMERS; ++w) items[w] = (mine > w ? (mine - w + CONSUMERS - 1) / CONSUMERS : 0) * slices;
    if (tid == 0) init_barriers(full, empty, CONSUMERS * RING, 4);
    if (DIGEST)
        for (int i = tid; i < 2 * CONSUMERS * MAX_SLICES; i += THREADS) parts[i] = 0;
    __syncthreads();

    if (wg == CONSUMERS) {  // the producer
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(CONSUMERS == 2 ? 40 : 24));
        if (warp == 4 * CONSUMERS && lane == 0) {
            asm volatile("fence.proxy.tensormap::generic.acquire.gpu [%0], 128;" ::"l"((u64)map_a) : "memory");
            asm volatile("fence.proxy.tensormap::generic.acquire.gpu [%0], 128;" ::"l"((u64)map_b) : "memory");
            int it[CONSUMERS] = {};
            for (int r = 0; r < mine; r += CONSUMERS) {
                int pi[CONSUMERS], pj[CONSUMERS];
#pragma unroll
                for (int w = 0; w < CONSUMERS; ++w)
                    if (r + w < mine) place(blockIdx.x + (r + w) * gridDim.x, num_i, num_j, pi[w], pj[w]);
                for (int s = 0; s < slices; ++s) {
#pragma unroll
                    for (int w = 0; w < CONSUMERS; ++w) {  // the warpgroups' slices s in turn
                        if (r + w >= mine) break;
                        const int stage = w * RING + it[w] % RING;
                        bar_wait(&empty[stage], ((it[w] / RING) & 1) ^ 1);
                        bar_expect(&full[stage], STAGE_BYTES);
                        unsigned char* at = base + stage * STAGE_BYTES;
                        tma_load(at, map_a, &full[stage], s * TILE, pi[w] * TILE);
                        tma_load(at + TILE * TILE, map_b, &full[stage], s * TILE, pj[w] * TILE);
                        ++it[w];
                    }
                }
            }
        }
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(CONSUMERS == 2 ? 232 : 160));
    // the warpgroup a compile-time constant: stages, shared-memory addresses and wgmma descriptors
    // are then uniform (computed once a warp on the uniform datapath, not per thread beside the digest)
    if (wg == 0)
        consume<DIGEST, 0>(base, full, empty, parts, out, keys, n, k, m, mine, items);
    else if (wg == 1 || CONSUMERS == 2)
        consume<DIGEST, 1>(base, full, empty, parts, out, keys, n, k, m, mine, items);
    else
        consume<DIGEST, CONSUMERS - 1>(base, full, empty, parts, out, keys, n, k, m, mine, items);
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) bcai_transcript_sm90(
    const void* map_a, const void* map_b, u32* leaves, const u32* keys, int n, int k, int m)
{
    body<1>(map_a, map_b, leaves, keys, n, k, m);
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) bcai_product_sm90(
    const void* map_a, const void* map_b, int* c, int n, int k, int m)
{
    body<0>(map_a, map_b, c, nullptr, n, k, m);
}

struct NoisyMaps {  // one noisy operand: factors (rows × r, cols × r), base and output (rows × cols)
    const void* left;
    const void* right;
    const void* base;
    const void* out;
};

// byte (row, col) of a 128×128 int8 tile in the 128-byte swizzle: the 16-byte
// chunks of row r permuted by r mod 8 (what TMA writes and reads)
__device__ __forceinline__ int swizzled(int row, int col) {
    return row * TILE + (((col >> 4) ^ (row & 7)) << 4) + (col & 15);
}

#ifndef BATCH
#define BATCH 16  // entries of the base read before any is written back
#endif

// 64 rows of a noisy operand: the wgmma block d (64 rows of left·rightᵀ, laid out as a
// consumer's lo) added to the base rows in shared memory (swizzled, 1024-aligned), over them,
// as int8 sums wrapping as on the host. Read in batches before anything is written back: a
// store might alias the next load to the compiler, which would otherwise run every
// load, add and store in series (H100, n = 4096: 0.0312 → 0.0306 ms on two blocks an SM, 0.173
// → 0.138 on 26 blocks; docs/benchmarks.md, session 10)
__device__ __forceinline__ void add_base(const u32 (&d)[64], unsigned char* rows) {
    const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
    const int row0 = warp * 16 + lane / 4, col0 = 2 * (lane % 4);
#pragma unroll
    for (int e0 = 0; e0 < 64; e0 += BATCH) {
        unsigned short x[BATCH / 2];
#pragma unroll
        for (int e = e0; e < e0 + BATCH; e += 2)  // two neighbouring entries a time
            x[(e - e0) / 2] = *(unsigned short*)(rows + swizzled(row0 + 8 * ((e / 2) % 2), 8 * (e / 4) + col0));
#pragma unroll
        for (int e = e0; e < e0 + BATCH; e += 2) {
            const unsigned short v = x[(e - e0) / 2];
            const u32 x0 = (u32)(signed char)(v & 0xFF) + d[e], x1 = (u32)(signed char)(v >> 8) + d[e + 1];
            *(unsigned short*)(rows + swizzled(row0 + 8 * ((e / 2) % 2), 8 * (e / 4) + col0)) =
                (unsigned short)((x0 & 0xFF) | (x1 & 0xFF) << 8);
        }
    }
}

extern "C" __global__ void __launch_bounds__(128) bcai_noisy_sm90(
    const void* a_left, const void* a_right, const void* a_base, const void* a_out, int a_cols, int a_tiles,
    const void* b_left, const void* b_right, const void* b_base, const void* b_out, int b_cols, int b_tiles)
{
    // persistent over both operands' tiles; two stages (the factors' rows and the base tile,
    // overwritten by the output tile): the next tile's loads run under this one's work
    unsigned char* base = raw + ((1024 - (smem(raw) & 1023)) & 1023);
    u64* full = (u64*)(base + 2 * NOISY_STAGE);
    const int tiles = a_tiles + b_tiles;
    const NoisyMaps ops[2] = {{a_left, a_right, a_base, a_out}, {b_left, b_right, b_base, b_out}};
    auto load = [&](int t, int stage) {  // thread 0: tile t's operands into a stage
        const int which = t >= a_tiles, u = t - which * a_tiles, cols = which ? b_cols : a_cols;
        const int I = u / (cols / TILE), J = u % (cols / TILE);
        unsigned char* at = base + stage * NOISY_STAGE;
        bar_expect(&full[stage], 3 * TILE * TILE);
        tma_load(at, ops[which].left, &full[stage], 0, I * TILE);
        tma_load(at + TILE * TILE, ops[which].right, &full[stage], 0, J * TILE);
        tma_load(at + 2 * TILE * TILE, ops[which].base, &full[stage], J * TILE, I * TILE);
    };
    if (threadIdx.x == 0) {
        bar_init(&full[0], 1);
        bar_init(&full[1], 1);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        for (int w = 0; w < 2; ++w) {
            asm volatile("fence.proxy.tensormap::generic.acquire.gpu [%0], 128;" ::"l"((u64)ops[w].left) : "memory");
            asm volatile("fence.proxy.tensormap::generic.acquire.gpu [%0], 128;" ::"l"((u64)ops[w].right) : "memory");
            asm volatile("fence.proxy.tensormap::generic.acquire.gpu [%0], 128;" ::"l"((u64)ops[w].base) : "memory");
            asm volatile("fence.proxy.tensormap::generic.acquire.gpu [%0], 128;" ::"l"((u64)ops[w].out) : "memory");
        }
        if ((int)blockIdx.x < tiles) load(blockIdx.x, 0);
    }
    __syncthreads();
    int i = 0;
    for (int t = blockIdx.x; t < tiles; t += gridDim.x, ++i) {
        const int stage = i % 2, next = t + gridDim.x;
        if (threadIdx.x == 0 && next < tiles) {
            asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory");  // the other stage's store has read it
            load(next, stage ^ 1);
        }
        bar_wait(&full[stage], (i / 2) & 1);
        unsigned char* at = base + stage * NOISY_STAGE;
        unsigned char* tile = at + 2 * TILE * TILE;
        u32 lo[64], hi[64];
        mma_fence();
        slice(lo, smem(at), smem(at + TILE * TILE), 0);
        slice(hi, smem(at) + HALF * TILE, smem(at + TILE * TILE), 0);
        mma_commit();
        mma_wait<0>();
        pin(lo);
        pin(hi);
        add_base(lo, tile);
        add_base(hi, tile + HALF * TILE);  // rows 64 on: the same swizzle (row mod 8) 8 KiB on
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // the writes, seen by TMA
        __syncthreads();
        if (threadIdx.x == 0) {
            const int which = t >= a_tiles, u = t - which * a_tiles, cols = which ? b_cols : a_cols;
            asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];"
                         ::"l"((u64)ops[which].out), "r"(u % (cols / TILE) * TILE), "r"(u / (cols / TILE) * TILE),
                           "r"(smem(tile)) : "memory");
            asm volatile("cp.async.bulk.commit_group;" ::: "memory");
        }
    }
    if (threadIdx.x == 0) asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
}
