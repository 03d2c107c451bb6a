// fwht_common.cuh: the building blocks of the GPU Walsh-Hadamard kernels
// (fwht.cu: the transform and the randomized Hadamard; turboquant.cu: the
// fused TurboQuantMSE encode and decode).
//
// keep in step with turboquant_lab/gpu/emulation.py, which follows these
// loops one for one in NumPy, and with its table, turboquant_lab/gpu/configs.py
// (tests/gpu/test_kernels.py parses this file and compares):
//   - the table fwht_config<LOG_D> below  <->  FWHT_CONFIGS
//     (VEC, THREADS_PER_ROW, CHUNKS, ROWS_PER_BLOCK for each log2 d)
//   - TQ_WARP_SIZE = 32                   <->  WARP_SIZE
//   - the element layout: thread t of a row holds, in x[c][i],
//         element (c * THREADS_PER_ROW + t) * VEC + i
//   - the stage order: register stages on the bits of i (strides 1 .. VEC/2),
//     shuffle stages on the lane bits (xor masks 1, 2, .. up to 16),
//     shared-memory stages on the warp bits, register stages on the bits of c
//   - the shared-memory exchange layout (exchange_groups below: no padding,
//     no swizzle; it is bank-conflict free as it is)
//   - the row-sum reduction order (row_sum below)
//   - the float16 layout (fwht_traits<LOG_D, 2>): 16-byte loads of 8 halves, VEC * 2
//     and CHUNKS / 2 where CHUNKS >= 2 (FwhtConfig.for_itemsize); the transform's
//     result does not depend on the layout (the same butterflies in the same order)
//   - the masked loads (load_row MODE 1 and 2): elements at or past d read as zeros
//   - the status flags (flag_status): TQ_STATUS_* bytes set in one device word
//
// Every result is bit-for-bit reproducible by the emulation: the butterflies
// are plain float adds and subtracts (register stages) or fmaf(+-1, x, other)
// (shuffle stages: one rounding of other +- x, the same as the add or subtract),
// products by +-1 signs are exact, the norm uses __fmul_rn/__fadd_rn/__fsqrt_rn
// (no FMA contraction), and the module is compiled with --fmad=false as well.
#pragma once

#define TQ_WARP_SIZE 32
#define TQ_FULL_MASK 0xffffffffu

// bits of the status word the kernels set (gpu/configs.py STATUS_*): one byte per flag, so
// that setting one is a plain byte store of 1 (no atomic), and the word reads as their OR
#define TQ_STATUS_NONFINITE 0x1    // a NaN or Inf output (fwht) or norm (encode): the input had one
#define TQ_STATUS_NORM16 0x100     // a norm at or above 65520, which float16 rounds to inf (encode)

// float16 storage without cuda_fp16.h (so NVRTC needs no extra header):
// the conversions are single PTX instructions, round to nearest even.
struct half_bits {
    unsigned short u;
};

__device__ __forceinline__ float tq_half_to_float(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ unsigned short tq_float_to_half(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float to_float(float f) { return f; }
__device__ __forceinline__ float to_float(half_bits h) { return tq_half_to_float(h.u); }
__device__ __forceinline__ void store_one(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_one(half_bits* p, float v) { p->u = tq_float_to_half(v); }

__host__ __device__ constexpr int tq_ilog2(int n) { return n <= 1 ? 0 : 1 + tq_ilog2(n / 2); }

// ------------------------------------------------------------------------------------------
// The dispatch table: one line per supported d = 2**LOG_D (2 .. 8192). The primary template
// is left undefined, so an unsupported size does not compile. Python's copy:
// gpu/configs.py FWHT_CONFIGS (checked by tests/gpu/test_kernels.py).
//   VEC              elements per vector load (float4 / 4 halves; float2 at d = 2)
//   THREADS_PER_ROW  threads that share one row (vector)
//   CHUNKS           vector loads per thread (register stages on the chunk bits at the end)
//   ROWS_PER_BLOCK   rows (vectors) per thread block: several when d is small
// ------------------------------------------------------------------------------------------
template <int LOG_D> struct fwht_config;
template <> struct fwht_config<1>  { static constexpr int VEC = 2, THREADS_PER_ROW = 1,   CHUNKS = 1, ROWS_PER_BLOCK = 256; };
template <> struct fwht_config<2>  { static constexpr int VEC = 4, THREADS_PER_ROW = 1,   CHUNKS = 1, ROWS_PER_BLOCK = 256; };
template <> struct fwht_config<3>  { static constexpr int VEC = 4, THREADS_PER_ROW = 1,   CHUNKS = 2, ROWS_PER_BLOCK = 256; };
template <> struct fwht_config<4>  { static constexpr int VEC = 4, THREADS_PER_ROW = 2,   CHUNKS = 2, ROWS_PER_BLOCK = 128; };
template <> struct fwht_config<5>  { static constexpr int VEC = 4, THREADS_PER_ROW = 4,   CHUNKS = 2, ROWS_PER_BLOCK = 64; };
template <> struct fwht_config<6>  { static constexpr int VEC = 4, THREADS_PER_ROW = 8,   CHUNKS = 2, ROWS_PER_BLOCK = 32; };
template <> struct fwht_config<7>  { static constexpr int VEC = 4, THREADS_PER_ROW = 16,  CHUNKS = 2, ROWS_PER_BLOCK = 16; };
template <> struct fwht_config<8>  { static constexpr int VEC = 4, THREADS_PER_ROW = 32,  CHUNKS = 2, ROWS_PER_BLOCK = 8; };
template <> struct fwht_config<9>  { static constexpr int VEC = 4, THREADS_PER_ROW = 32,  CHUNKS = 4, ROWS_PER_BLOCK = 4; };
template <> struct fwht_config<10> { static constexpr int VEC = 4, THREADS_PER_ROW = 64,  CHUNKS = 4, ROWS_PER_BLOCK = 2; };
template <> struct fwht_config<11> { static constexpr int VEC = 4, THREADS_PER_ROW = 128, CHUNKS = 4, ROWS_PER_BLOCK = 1; };
template <> struct fwht_config<12> { static constexpr int VEC = 4, THREADS_PER_ROW = 256, CHUNKS = 4, ROWS_PER_BLOCK = 1; };
template <> struct fwht_config<13> { static constexpr int VEC = 4, THREADS_PER_ROW = 256, CHUNKS = 8, ROWS_PER_BLOCK = 1; };

// Every constant of a size, derived from its table line and checked. ITEM_BYTES = 2
// (float16 in memory) doubles VEC and halves CHUNKS where CHUNKS >= 2 and VEC = 4, so
// that one load moves 16 bytes; the threads, rows and stages of the other kinds stay.
template <int LOG_D_, int ITEM_BYTES = 4>
struct fwht_traits {
    using config = fwht_config<LOG_D_>;
    static constexpr int WIDEN = (ITEM_BYTES == 2 && config::CHUNKS >= 2 && config::VEC == 4) ? 2 : 1;
    static constexpr int LOG_D = LOG_D_;
    static constexpr int D = 1 << LOG_D;
    static constexpr int VEC = config::VEC * WIDEN;
    static constexpr int THREADS_PER_ROW = config::THREADS_PER_ROW;
    static constexpr int CHUNKS = config::CHUNKS / WIDEN;
    static constexpr int ROWS_PER_BLOCK = config::ROWS_PER_BLOCK;
    static constexpr int BLOCK_THREADS = ROWS_PER_BLOCK * THREADS_PER_ROW;
    static constexpr int ELEMS = VEC * CHUNKS;  // floats in registers per thread
    // lanes of one warp that hold the same row, and warps per row
    static constexpr int ROW_LANES = THREADS_PER_ROW < TQ_WARP_SIZE ? THREADS_PER_ROW : TQ_WARP_SIZE;
    static constexpr int WARPS_PER_ROW = THREADS_PER_ROW / ROW_LANES;
    static constexpr int LOG_VEC = tq_ilog2(VEC);
    static constexpr int LOG_LANES = tq_ilog2(ROW_LANES);
    static constexpr int LOG_WARPS = tq_ilog2(WARPS_PER_ROW);
    static constexpr int LOG_CHUNKS = tq_ilog2(CHUNKS);
    // shared-memory stage: groups of WARPS_PER_ROW elements (differing in the warp bits only)
    static constexpr int EXCHANGE_GROUPS = ELEMS / WARPS_PER_ROW;
    static constexpr int EXCHANGE_FLOATS = WARPS_PER_ROW > 1 ? ROWS_PER_BLOCK * D : 0;

    static_assert(LOG_D >= 1 && LOG_D <= 13, "d must be a power of two from 2 to 8192");
    static_assert(VEC == 2 || VEC == 4 || (VEC == 8 && ITEM_BYTES == 2),
                  "VEC: one float2 / float4 load, or 8 halves (16 bytes)");
    static_assert((1 << LOG_VEC) == VEC && (1 << LOG_CHUNKS) == CHUNKS, "powers of two");
    static_assert((1 << LOG_LANES) == ROW_LANES && (1 << LOG_WARPS) == WARPS_PER_ROW, "powers of two");
    static_assert(THREADS_PER_ROW < TQ_WARP_SIZE ? TQ_WARP_SIZE % THREADS_PER_ROW == 0
                                                 : THREADS_PER_ROW % TQ_WARP_SIZE == 0,
                  "a row's threads fill part of one warp, or whole warps");
    static_assert(VEC * THREADS_PER_ROW * CHUNKS == D, "the threads of a row hold the row once");
    static_assert(LOG_VEC + LOG_LANES + LOG_WARPS + LOG_CHUNKS == LOG_D, "one stage per bit of d");
    static_assert(BLOCK_THREADS % TQ_WARP_SIZE == 0 && BLOCK_THREADS <= 1024,
                  "whole warps only: every lane takes part in the shuffles");
    static_assert(EXCHANGE_GROUPS * WARPS_PER_ROW == ELEMS && EXCHANGE_GROUPS >= 1,
                  "the shared-memory stage splits a thread's elements into whole groups");
    static_assert(EXCHANGE_FLOATS * 4 <= 32 * 1024, "at most 32 KiB of shared memory for the exchange");
    static_assert(ROWS_PER_BLOCK % 4 == 0 || D % 32 == 0,
                  "a block's packed codes start on a 4-byte boundary (turboquant.cu)");
};

// ------------------------------------------------------------------------------------------
// Loads and stores: one vector instruction per chunk, VEC elements, computed in float.
// ------------------------------------------------------------------------------------------
template <int VEC>
__device__ __forceinline__ void load_vec(const float* p, float (&v)[VEC]) {
    if constexpr (VEC == 8) {  // the float16 layout's signs and shared-memory rows
        const float4 a = *reinterpret_cast<const float4*>(p);
        const float4 b = *reinterpret_cast<const float4*>(p + 4);
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    } else if constexpr (VEC == 4) {
        const float4 q = *reinterpret_cast<const float4*>(p);
        v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
    } else {
        const float2 q = *reinterpret_cast<const float2*>(p);
        v[0] = q.x; v[1] = q.y;
    }
}

template <int VEC>
__device__ __forceinline__ void load_vec(const half_bits* p, float (&v)[VEC]) {
    if constexpr (VEC == 8) {
        const uint4 q = *reinterpret_cast<const uint4*>(p);
        const unsigned int w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            v[2 * k] = tq_half_to_float(w[k] & 0xffffu);
            v[2 * k + 1] = tq_half_to_float(w[k] >> 16);
        }
    } else if constexpr (VEC == 4) {
        const uint2 q = *reinterpret_cast<const uint2*>(p);
        v[0] = tq_half_to_float(q.x & 0xffffu); v[1] = tq_half_to_float(q.x >> 16);
        v[2] = tq_half_to_float(q.y & 0xffffu); v[3] = tq_half_to_float(q.y >> 16);
    } else {
        const unsigned int q = *reinterpret_cast<const unsigned int*>(p);
        v[0] = tq_half_to_float(q & 0xffffu); v[1] = tq_half_to_float(q >> 16);
    }
}

template <int VEC>
__device__ __forceinline__ void store_vec(float* p, const float (&v)[VEC]) {
    if constexpr (VEC == 8) {
        *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
        *reinterpret_cast<float4*>(p + 4) = make_float4(v[4], v[5], v[6], v[7]);
    } else if constexpr (VEC == 4) {
        *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
        *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]);
    }
}

template <int VEC>
__device__ __forceinline__ void store_vec(half_bits* p, const float (&v)[VEC]) {
    if constexpr (VEC == 8) {
        unsigned int w[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            w[k] = (unsigned int)tq_float_to_half(v[2 * k]) |
                   ((unsigned int)tq_float_to_half(v[2 * k + 1]) << 16);
        }
        *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
    } else if constexpr (VEC == 4) {
        uint2 q;
        q.x = (unsigned int)tq_float_to_half(v[0]) | ((unsigned int)tq_float_to_half(v[1]) << 16);
        q.y = (unsigned int)tq_float_to_half(v[2]) | ((unsigned int)tq_float_to_half(v[3]) << 16);
        *reinterpret_cast<uint2*>(p) = q;
    } else {
        *reinterpret_cast<unsigned int*>(p) =
            (unsigned int)tq_float_to_half(v[0]) | ((unsigned int)tq_float_to_half(v[1]) << 16);
    }
}

// The row's elements into this thread's registers (zeros for a row past the end).
// MODE 0: the row holds all D elements (one vector load per chunk). MODE 1: only the
// first d (d % VEC == 0, rows d elements apart): a chunk is loaded whole or read as
// zeros. MODE 2: any d < D: element by element, zeros at and past d. The zeros are
// the zero padding of d to D, so every mode gives the registers of the padded row.
template <class TR, int MODE, typename T>
__device__ __forceinline__ void load_row(const T* row_ptr, bool valid, int t, int d,
                                         float (&x)[TR::CHUNKS][TR::VEC]) {
#pragma unroll
    for (int c = 0; c < TR::CHUNKS; ++c) {
        const int first = (c * TR::THREADS_PER_ROW + t) * TR::VEC;
        if (MODE == 0 ? valid : (MODE == 1 ? valid && first < d : false)) {
            load_vec<TR::VEC>(row_ptr + first, x[c]);
        } else {
#pragma unroll
            for (int i = 0; i < TR::VEC; ++i) {
                if constexpr (MODE == 2) {
                    x[c][i] = (valid && first + i < d) ? to_float(row_ptr[first + i]) : 0.0f;
                } else {
                    x[c][i] = 0.0f;
                }
            }
        }
    }
}

// Stores of the row's first d elements (MODE as in load_row; only rows that exist).
template <class TR, int MODE, typename T>
__device__ __forceinline__ void store_row(T* row_ptr, int t, int d, const float (&x)[TR::CHUNKS][TR::VEC]) {
#pragma unroll
    for (int c = 0; c < TR::CHUNKS; ++c) {
        const int first = (c * TR::THREADS_PER_ROW + t) * TR::VEC;
        if constexpr (MODE == 2) {
#pragma unroll
            for (int i = 0; i < TR::VEC; ++i) {
                if (first + i < d) store_one(row_ptr + first + i, x[c][i]);
            }
        } else if (MODE == 0 || first < d) {
            store_vec<TR::VEC>(row_ptr + first, x[c]);
        }
    }
}

// x[c][i] *= s[element], s a (d,) float array of +-1 in global memory (read through L1/L2).
template <class TR>
__device__ __forceinline__ void multiply_signs(const float* __restrict__ s, int t,
                                               float (&x)[TR::CHUNKS][TR::VEC]) {
#pragma unroll
    for (int c = 0; c < TR::CHUNKS; ++c) {
        float sv[TR::VEC];
        load_vec<TR::VEC>(s + (c * TR::THREADS_PER_ROW + t) * TR::VEC, sv);
#pragma unroll
        for (int i = 0; i < TR::VEC; ++i) x[c][i] = x[c][i] * sv[i];
    }
}

// ------------------------------------------------------------------------------------------
// The four kinds of butterfly stage. Each stage pairs element j with j + h (bit h of j
// clear) and replaces (a, b) by (a + b, a - b). Unnormalized: the caller scales once.
// ------------------------------------------------------------------------------------------

// 1. Registers, element bits: strides 1, 2, .., VEC/2 inside each vector load.
// FIRST = 2 skips the stride-1 stage (done by butterfly_first_signed).
template <class TR, int FIRST = 1>
__device__ __forceinline__ void butterfly_elements(float (&x)[TR::CHUNKS][TR::VEC]) {
#pragma unroll
    for (int h = FIRST; h < TR::VEC; h <<= 1) {
#pragma unroll
        for (int c = 0; c < TR::CHUNKS; ++c) {
#pragma unroll
            for (int i = 0; i < TR::VEC; ++i) {
                if ((i & h) == 0) {
                    const float a = x[c][i], b = x[c][i + h];
                    x[c][i] = a + b;
                    x[c][i + h] = a - b;
                }
            }
        }
    }
}

// 2. Warp shuffles, lane bits: strides VEC, 2 VEC, .., VEC * ROW_LANES / 2. The partner
// of lane l is lane l ^ m; the lane whose bit m is set keeps partner - own (= a - b).
// Two instructions per element: the shuffle and fmaf(sign, own, partner), sign = -1 on
// the upper lane, +1 on the lower: one rounding of partner -+ own, exactly the subtract
// or add (a product by +-1 is exact).
template <class TR>
__device__ __forceinline__ void butterfly_lanes(float (&x)[TR::CHUNKS][TR::VEC], int lane) {
#pragma unroll
    for (int m = 1; m < TR::ROW_LANES; m <<= 1) {
        const float sign = (lane & m) ? -1.0f : 1.0f;
#pragma unroll
        for (int c = 0; c < TR::CHUNKS; ++c) {
#pragma unroll
            for (int i = 0; i < TR::VEC; ++i) {
                const float other = __shfl_xor_sync(TQ_FULL_MASK, x[c][i], m);
                x[c][i] = fmaf(sign, x[c][i], other);
            }
        }
    }
}

// 3. Shared memory, warp bits: strides VEC * 32, .., VEC * THREADS_PER_ROW / 2 (only when a
// row spans several warps). The row goes to shared memory in its natural order (one
// 16-byte store per chunk); then thread t takes the EXCHANGE_GROUPS groups
// o = t + THREADS_PER_ROW * k, each the WARPS_PER_ROW elements
//     ((c * THREADS_PER_ROW + w * 32 + l) * VEC + i),   w = 0 .. WARPS_PER_ROW - 1,
// with i = o % VEC, l = (o / VEC) % 32, c = o / (VEC * 32), does the warp-bit
// butterflies on them in registers, writes them back, and reloads its own elements.
// Consecutive lanes read consecutive floats (conflict free); the 16-byte stores and
// loads are contiguous per warp (also conflict free), so no padding is needed.
template <class TR>
__device__ __forceinline__ void butterfly_warps(float (&x)[TR::CHUNKS][TR::VEC], float* row_smem, int t) {
    if constexpr (TR::WARPS_PER_ROW > 1) {
        constexpr int W = TR::WARPS_PER_ROW, G = TR::EXCHANGE_GROUPS;
#pragma unroll
        for (int c = 0; c < TR::CHUNKS; ++c) {
            store_vec<TR::VEC>(row_smem + (c * TR::THREADS_PER_ROW + t) * TR::VEC, x[c]);
        }
        __syncthreads();
        float z[G][W];
#pragma unroll
        for (int k = 0; k < G; ++k) {
            const int o = t + TR::THREADS_PER_ROW * k;
            const int i = o & (TR::VEC - 1);
            const int l = (o >> TR::LOG_VEC) & (TQ_WARP_SIZE - 1);
            const int c = o >> (TR::LOG_VEC + TR::LOG_LANES);
#pragma unroll
            for (int w = 0; w < W; ++w) {
                z[k][w] = row_smem[(c * TR::THREADS_PER_ROW + w * TQ_WARP_SIZE + l) * TR::VEC + i];
            }
        }
#pragma unroll
        for (int h = 1; h < W; h <<= 1) {
#pragma unroll
            for (int k = 0; k < G; ++k) {
#pragma unroll
                for (int w = 0; w < W; ++w) {
                    if ((w & h) == 0) {
                        const float a = z[k][w], b = z[k][w + h];
                        z[k][w] = a + b;
                        z[k][w + h] = a - b;
                    }
                }
            }
        }
#pragma unroll
        for (int k = 0; k < G; ++k) {
            const int o = t + TR::THREADS_PER_ROW * k;
            const int i = o & (TR::VEC - 1);
            const int l = (o >> TR::LOG_VEC) & (TQ_WARP_SIZE - 1);
            const int c = o >> (TR::LOG_VEC + TR::LOG_LANES);
#pragma unroll
            for (int w = 0; w < W; ++w) {
                row_smem[(c * TR::THREADS_PER_ROW + w * TQ_WARP_SIZE + l) * TR::VEC + i] = z[k][w];
            }
        }
        __syncthreads();
#pragma unroll
        for (int c = 0; c < TR::CHUNKS; ++c) {
            load_vec<TR::VEC>(row_smem + (c * TR::THREADS_PER_ROW + t) * TR::VEC, x[c]);
        }
    }
}

// 4. Registers, chunk bits: strides VEC * THREADS_PER_ROW, .., d / 2.
template <class TR>
__device__ __forceinline__ void butterfly_chunks(float (&x)[TR::CHUNKS][TR::VEC]) {
#pragma unroll
    for (int h = 1; h < TR::CHUNKS; h <<= 1) {
#pragma unroll
        for (int c = 0; c < TR::CHUNKS; ++c) {
            if ((c & h) == 0) {
#pragma unroll
                for (int i = 0; i < TR::VEC; ++i) {
                    const float a = x[c][i], b = x[c + h][i];
                    x[c][i] = a + b;
                    x[c + h][i] = a - b;
                }
            }
        }
    }
}

// The whole unnormalized transform of the row held by this thread and its partners:
// log2(d) stages in increasing stride (the order of hadamard.fwht_stages).
template <class TR>
__device__ __forceinline__ void fwht_row(float (&x)[TR::CHUNKS][TR::VEC], float* row_smem, int t, int lane) {
    butterfly_elements<TR>(x);
    butterfly_lanes<TR>(x, lane);
    butterfly_warps<TR>(x, row_smem, t);
    butterfly_chunks<TR>(x);
}

// The stride-1 stage of multiply_signs then butterfly_elements, in 3 instructions per pair
// instead of 4: (a sa) + (b sb) = fmaf(a, sa, b sb) and (a sa) - (b sb) = fmaf(a, sa, -(b sb)),
// one rounding of the same exact terms (a product by +-1 is exact), so the same bits.
template <class TR>
__device__ __forceinline__ void butterfly_first_signed(float (&x)[TR::CHUNKS][TR::VEC],
                                                       const float* __restrict__ s, int t) {
#pragma unroll
    for (int c = 0; c < TR::CHUNKS; ++c) {
        float sv[TR::VEC];
        load_vec<TR::VEC>(s + (c * TR::THREADS_PER_ROW + t) * TR::VEC, sv);
#pragma unroll
        for (int i = 0; i < TR::VEC; i += 2) {
            const float a = x[c][i], bs = x[c][i + 1] * sv[i + 1];
            x[c][i] = fmaf(a, sv[i], bs);
            x[c][i + 1] = fmaf(a, sv[i], -bs);
        }
    }
}

// fwht_row of (s * x): the sign flips folded into the first stage.
template <class TR>
__device__ __forceinline__ void fwht_row_signed(float (&x)[TR::CHUNKS][TR::VEC], const float* __restrict__ s,
                                                float* row_smem, int t, int lane) {
    butterfly_first_signed<TR>(x, s, t);
    butterfly_elements<TR, 2>(x);
    butterfly_lanes<TR>(x, lane);
    butterfly_warps<TR>(x, row_smem, t);
    butterfly_chunks<TR>(x);
}

// The sum of one float per thread over the threads of a row, the same value in every
// thread of the row: an xor tree inside the warp (masks ROW_LANES/2, .., 2, 1), then,
// when the row spans several warps, warp 0's sum + warp 1's + ... in that order.
// Uses one __syncthreads when WARPS_PER_ROW > 1 (all threads of the block must call it).
template <class TR>
__device__ __forceinline__ float row_sum(float s, float* red_smem, int r_local, int t, int lane) {
#pragma unroll
    for (int m = TR::ROW_LANES / 2; m >= 1; m >>= 1) {
        s = __fadd_rn(s, __shfl_xor_sync(TQ_FULL_MASK, s, m));
    }
    if constexpr (TR::WARPS_PER_ROW > 1) {
        if (lane == 0) red_smem[r_local * TR::WARPS_PER_ROW + t / TQ_WARP_SIZE] = s;
        __syncthreads();
        s = red_smem[r_local * TR::WARPS_PER_ROW];
#pragma unroll
        for (int w = 1; w < TR::WARPS_PER_ROW; ++w) {
            s = __fadd_rn(s, red_smem[r_local * TR::WARPS_PER_ROW + w]);
        }
    }
    return s;
}

// The status flag: a thread that sees a bad value sets the byte of flag BIT in *status (a
// plain byte store of 1: no atomic, and the word reads as the OR of the flags set; only the
// few threads that hold a row's element 0 or norm test anything). The host reads it later,
// or never: nothing here makes it wait.
template <unsigned int BIT>
__device__ __forceinline__ void flag_status(bool bad, unsigned int* status) {
    static_assert(BIT == 0x1 || BIT == 0x100 || BIT == 0x10000 || BIT == 0x1000000, "one byte per flag");
    constexpr int byte = BIT == 0x1 ? 0 : (BIT == 0x100 ? 1 : (BIT == 0x10000 ? 2 : 3));
    if (bad) reinterpret_cast<volatile unsigned char*>(status)[byte] = 1;
}
