// turboquant.cu: TurboQuantMSE encode and decode (Hadamard rotation), each one fused pass.
//
// encode: x (n, d) float32 -> norms (n,) float32 and packed codes (n, ceil(D * BITS / 8)):
//   r = ||x|| (per-thread sums, xor tree in the warp, then across warps),
//   t = s2 * H(s1 * x) / r   (= sqrt(D) * D2 H_norm D1 x / r, the scaled rotated coordinate),
//   code = #{k : thresholds[k] <= t}, found with a uniform grid and one comparison (below),
//   codes packed LSB-first into a little-endian bit stream (packing.pack_bits' layout):
//   code j of a row occupies bits [j * BITS, (j + 1) * BITS) of the row's bytes.
// decode: packed codes + float16 norms -> x_hat (n, d) float32:
//   x_hat = s1 * H(s2 * levels[code]) * (r / D)   (= r * D1 H_norm D2 (centroids / sqrt(D))).
// BITS 1 .. 8 and D = 2**LOG_D (2 .. 8192) are template parameters; d <= D is the row
// length in memory: rows shorter than D are read with masked loads (the zero padding to
// D, without a padded copy) and decoded with masked stores (MODE: 0 d = D, 1 d % 4 = 0,
// 2 any d).
//
// The search: thresholds ascending, in scaled units. gpu/configs.py search_grid cuts the
// line into cells of width 2**-K, [m 2**-K, (m + 1) 2**-K), m = m_lo .. m_lo + cells - 1,
// with at most one threshold per cell; entry j holds (that threshold or NaN, the number
// of thresholds in the cells before). Then y = fma_rd(t, 2**K, 2**23 - m_lo) is exactly
// 2**23 + floor(t 2**K) - m_lo in [2**23, 2**24) (one rounding down), clamped to the
// grid, its low bits are the cell j, and code = base[j] + (t >= threshold[j]): a count
// of thresholds <= t, as a binary search would give, ties, NaN (code 0) and Inf included.
//
// Packing (no shared memory, no atomics): a thread's VEC codes of one chunk are one
// field of F = VEC * BITS bits at bit (c * THREADS_PER_ROW + t) * F of its row. F a
// multiple of 8: the thread stores its F / 8 bytes. F = 8 k + 4 (odd BITS): the even
// thread takes its odd neighbour's field with one shuffle and stores the pair's BITS
// bytes. A row in one thread (d <= 8): the thread stores the row's bytes.
//
// keep in step with turboquant_lab/gpu/emulation.py: emulate_encode and emulate_decode
// follow these kernels (the same FWHT building blocks and table as fwht.cu, in
// fwht_common.cuh; MAX_BITS = 8; GRID_MAX_CELLS; the grid search; the packing above;
// the status bits of the norms).
#include "fwht_common.cuh"

#define TQ_MAX_BITS 8

// cells of the search grid, at most (gpu/configs.py GRID_MAX_CELLS)
// 256 up to 6 bits: the cell is then an 8-bit integer, saturated by the conversion
__host__ __device__ constexpr int tq_grid_max_cells(int bits) { return bits <= 6 ? 256 : 1024; }

template <int LOG_D, int BITS>
struct tq_codec_traits : fwht_traits<LOG_D> {
    using base = fwht_traits<LOG_D>;
    static constexpr int MAX_BITS = TQ_MAX_BITS;
    static constexpr int LEVELS = 1 << BITS;
    static constexpr int FIELD = base::VEC * BITS;           // bits of one chunk's codes
    static constexpr int ROW_BYTES = (base::D * BITS + 7) / 8;
    static constexpr int GRID_CELLS = tq_grid_max_cells(BITS);
    static constexpr bool GRID_U8 = GRID_CELLS == 256;  // the cell is a saturated 8-bit integer
    static constexpr int RED_FLOATS = base::WARPS_PER_ROW > 1 ? base::ROWS_PER_BLOCK * base::WARPS_PER_ROW : 1;
    static constexpr int EXCHANGE_SLOTS = base::EXCHANGE_FLOATS > 0 ? base::EXCHANGE_FLOATS : 4;
    static constexpr int SMEM_BYTES = 4 * (EXCHANGE_SLOTS + RED_FLOATS) + 8 * GRID_CELLS;

    static_assert(BITS >= 1 && BITS <= MAX_BITS, "1 to 8 bits");
    static_assert(FIELD <= 32, "the codes of one vector load fit one 32-bit word");
    static_assert(base::THREADS_PER_ROW == 1 || FIELD % 8 == 0 || (FIELD % 8 == 4 && base::THREADS_PER_ROW % 2 == 0),
                  "a field is whole bytes, or a pair of threads makes whole bytes");
    static_assert(base::THREADS_PER_ROW > 1 || base::D * BITS <= 64, "a row in one thread fits 64 bits");
    static_assert(SMEM_BYTES <= 48 * 1024, "static shared memory is limited to 48 KiB");
};

// ------------------------------------------------------------------------------------------
// Packed codes in global memory
// ------------------------------------------------------------------------------------------

template <int NBYTES, typename U>
__device__ __forceinline__ void store_bytes(unsigned char* p, U v) {
    if constexpr (NBYTES == 1) {
        *p = (unsigned char)v;
    } else if constexpr (NBYTES == 2) {
        *reinterpret_cast<unsigned short*>(p) = (unsigned short)v;  // 2-byte aligned here
    } else if constexpr (NBYTES == 4) {
        *reinterpret_cast<unsigned int*>(p) = (unsigned int)v;      // 4-byte aligned here
    } else {
#pragma unroll
        for (int k = 0; k < NBYTES; ++k) p[k] = (unsigned char)(v >> (8 * k));
    }
}

template <int NBYTES, bool ALIGNED = true>
__device__ __forceinline__ unsigned long long load_bytes(const unsigned char* p) {
    if constexpr (NBYTES == 1) {
        return *p;
    } else if constexpr (ALIGNED && NBYTES == 2) {
        return *reinterpret_cast<const unsigned short*>(p);
    } else if constexpr (ALIGNED && NBYTES == 4) {
        return *reinterpret_cast<const unsigned int*>(p);
    } else {
        unsigned long long v = 0;
#pragma unroll
        for (int k = 0; k < NBYTES; ++k) v |= (unsigned long long)p[k] << (8 * k);
        return v;
    }
}

// field[c]: the chunk's VEC codes, code i at bits [i * BITS, (i + 1) * BITS). All threads
// call it (the pair shuffle); only valid rows store.
template <class TQ>
__device__ __forceinline__ void store_codes(unsigned char* row_codes, int t, bool valid,
                                            const unsigned int (&field)[TQ::CHUNKS]) {
    constexpr int F = TQ::FIELD;
    if constexpr (TQ::THREADS_PER_ROW == 1) {
        unsigned long long acc = 0;
#pragma unroll
        for (int c = 0; c < TQ::CHUNKS; ++c) acc |= (unsigned long long)field[c] << (c * F);
        if (valid) store_bytes<TQ::ROW_BYTES>(row_codes, acc);
    } else if constexpr (F % 8 == 0) {
        unsigned char* mine = row_codes + t * (F / 8);
        if (valid) {
#pragma unroll
            for (int c = 0; c < TQ::CHUNKS; ++c) store_bytes<F / 8>(mine + c * TQ::THREADS_PER_ROW * (F / 8), field[c]);
        }
    } else {
        // the even thread t of a pair: its field starts at byte t * F / 8 (+ whole chunks);
        // the shuffles first (every lane takes part), then one branch around all the stores
        unsigned int partner[TQ::CHUNKS];
#pragma unroll
        for (int c = 0; c < TQ::CHUNKS; ++c) partner[c] = __shfl_down_sync(TQ_FULL_MASK, field[c], 1);
        if (valid && (t & 1) == 0) {
            unsigned char* mine = row_codes + (t >> 1) * (2 * F / 8);  // = t * F / 8, t even
#pragma unroll
            for (int c = 0; c < TQ::CHUNKS; ++c) {
                unsigned char* p = mine + c * (TQ::THREADS_PER_ROW * F / 8);
                if constexpr (2 * F <= 32) {  // 1 or 3 bits: the pair fits one word
                    store_bytes<(2 * F) / 8>(p, field[c] | (partner[c] << F));
                } else {
                    store_bytes<(2 * F) / 8>(p, field[c] | ((unsigned long long)partner[c] << F));
                }
            }
        }
    }
}

// The inverse: each thread reads the bytes that hold its fields (a field starts on a byte
// or half a byte: (F + 4) / 8 bytes, shifted by 0 or 4 bits, when F is not whole bytes).
template <class TQ>
__device__ __forceinline__ void load_codes(const unsigned char* row_codes, int t, bool valid,
                                           unsigned int (&field)[TQ::CHUNKS]) {
    constexpr int F = TQ::FIELD;
    constexpr unsigned long long MASK = (1ull << F) - 1ull;
    if constexpr (TQ::THREADS_PER_ROW == 1) {
        const unsigned long long acc = valid ? load_bytes<TQ::ROW_BYTES>(row_codes) : 0ull;
#pragma unroll
        for (int c = 0; c < TQ::CHUNKS; ++c) field[c] = (unsigned int)((acc >> (c * F)) & MASK);
    } else {
#pragma unroll
        for (int c = 0; c < TQ::CHUNKS; ++c) {
            const int bit = (c * TQ::THREADS_PER_ROW + t) * F;
            constexpr int NB = F % 8 == 0 ? F / 8 : (F + 4) / 8;
            const unsigned long long v = valid ? load_bytes<NB, F % 8 == 0>(row_codes + (bit >> 3)) : 0ull;
            field[c] = (unsigned int)((v >> (bit & 7)) & MASK);
        }
    }
}

// ------------------------------------------------------------------------------------------
// The search
// ------------------------------------------------------------------------------------------

// word += add when a >= b (NaN compares false): a compare and one predicated add
__device__ __forceinline__ void add_if_ge(unsigned int& word, unsigned int add, float a, float b) {
    asm("{\n\t.reg .pred p;\n\tsetp.ge.ftz.f32 p, %1, %2;\n\t@p add.u32 %0, %0, %3;\n\t}"
        : "+r"(word) : "f"(a), "f"(b), "r"(add));
}

// The grid cell of t. U8 (a table of 256 entries): floor(t 2**K) - m_lo, rounded down once
// by the fma, then converted to an integer saturated to 0 .. 255 (NaN: 0). Otherwise: the
// fma rounds down t 2**K + 2**23 - m_lo, clamped to [2**23, top], whose low bits are the cell.
template <bool U8>
__device__ __forceinline__ int grid_cell(float t, float scale, float magic, float top) {
    if constexpr (U8) {
        unsigned int j;  // a 32-bit destination of an 8-bit cvt is zero-extended
        asm("cvt.rzi.u8.f32 %0, %1;" : "=r"(j) : "f"(__fmaf_rd(t, scale, magic)));
        return (int)j;
    } else {
        return __float_as_int(fminf(fmaxf(__fmaf_rd(t, scale, magic), 8388608.0f), top)) - 0x4B000000;
    }
}

// ------------------------------------------------------------------------------------------
// The kernels
// ------------------------------------------------------------------------------------------

// x: (n_rows, d) float32, C-contiguous (16-byte aligned rows for MODE 0 and 1).
// codes: (n_rows, ceil(D * BITS / 8)) uint8, 4-byte aligned. norms: (n_rows,) float32.
// grid: (grid_cells,) float2 from search_grid; grid_scale = 2**K, grid_magic = 2**23 - m_lo,
// grid_top = 2**23 + grid_cells - 1. status: TQ_STATUS_NONFINITE when a norm is NaN or Inf
// (x held one, or its squares overflowed), TQ_STATUS_NORM16 when a norm is >= 65520.
template <int LOG_D, int BITS, int MODE>
__global__ void __launch_bounds__(fwht_traits<LOG_D>::BLOCK_THREADS)
tq_encode_kernel(const float* __restrict__ x, unsigned char* __restrict__ codes,
                 float* __restrict__ norms, long long n_rows, int d,
                 const float* __restrict__ signs1, const float* __restrict__ signs2,
                 const float2* __restrict__ grid, float grid_scale, float grid_magic,
                 float grid_top, int grid_cells, unsigned int* __restrict__ status) {
    using TQ = tq_codec_traits<LOG_D, BITS>;
    __shared__ __align__(16) float exchange[TQ::EXCHANGE_SLOTS];
    __shared__ float s_red[TQ::RED_FLOATS];
    __shared__ float2 s_grid[TQ::GRID_CELLS];

#pragma unroll
    for (int k0 = 0; k0 < TQ::GRID_CELLS; k0 += TQ::BLOCK_THREADS) {
        const int k = k0 + threadIdx.x;
        if ((TQ::GRID_CELLS % TQ::BLOCK_THREADS == 0 || k < TQ::GRID_CELLS) && k < grid_cells) s_grid[k] = grid[k];
    }

    const int r_local = threadIdx.x / TQ::THREADS_PER_ROW;
    const int t = threadIdx.x % TQ::THREADS_PER_ROW;
    const int lane = threadIdx.x % TQ_WARP_SIZE;
    const long long row = (long long)blockIdx.x * TQ::ROWS_PER_BLOCK + r_local;
    const bool valid = row < n_rows;

    // a row past the end reads the last row (no branch) and is never stored or flagged
    const long long src = valid ? row : n_rows - 1;
    float v[TQ::CHUNKS][TQ::VEC];
    load_row<TQ, MODE>(x + src * (MODE == 0 ? TQ::D : d), true, t, d, v);

    // 1. the norm: this thread's squares in order (c, then i), then the row's sum
    float s = __fmul_rn(v[0][0], v[0][0]);  // = 0 + v * v: squares are >= 0, so exact
#pragma unroll
    for (int c = 0; c < TQ::CHUNKS; ++c) {
#pragma unroll
        for (int i = 0; i < TQ::VEC; ++i) {
            if (c > 0 || i > 0) s = __fadd_rn(s, __fmul_rn(v[c][i], v[c][i]));
        }
    }
    s = row_sum<TQ>(s, s_red, r_local, t, lane);
    const float norm = __fsqrt_rn(s);
    const float inv = norm > 0.0f ? __frcp_rn(norm) : 0.0f;  // a zero vector encodes t = 0
    if (valid && t == 0) norms[row] = norm;
    const bool lead = valid && t == 0;
    flag_status<TQ_STATUS_NONFINITE>(lead && !(norm <= 3.402823466e38f), status);
    flag_status<TQ_STATUS_NORM16>(lead && norm >= 65520.0f && norm <= 3.402823466e38f, status);

    // 2. the rotation, unnormalized: sqrt(D) / sqrt(D) cancels (signs1 folded into its first stage)
    fwht_row_signed<TQ>(v, signs1, exchange + (TQ::EXCHANGE_FLOATS > 0 ? r_local * TQ::D : 0), t, lane);
    __syncthreads();  // s_grid is filled (row_sum / the exchange may not have synchronised)

    // 3. codes: the grid search, one field per vector load, then the packed bytes
    unsigned int field[TQ::CHUNKS];
#pragma unroll
    for (int c = 0; c < TQ::CHUNKS; ++c) {
        float sv[TQ::VEC];
        load_vec<TQ::VEC>(signs2 + (c * TQ::THREADS_PER_ROW + t) * TQ::VEC, sv);
        unsigned int word = 0u;
#pragma unroll
        for (int i = 0; i < TQ::VEC; ++i) {
            const float tv = (v[c][i] * sv[i]) * inv;
            const float2 cell = s_grid[grid_cell<TQ::GRID_U8>(tv, grid_scale, grid_magic, grid_top)];
            // code = base + (tv >= threshold), added in place (the compare predicates an add)
            word += (unsigned int)__float_as_int(cell.y) << (i * BITS);
            add_if_ge(word, 1u << (i * BITS), tv, cell.x);
        }
        field[c] = word;
    }
    store_codes<TQ>(codes + src * TQ::ROW_BYTES, t, valid, field);
}

// codes: (n_rows, ceil(D * BITS / 8)) uint8, 4-byte aligned; norms: (n_rows,) float16;
// levels: (2**BITS,) float32 centroids in scaled units; out: (n_rows, d) float32
// (16-byte aligned rows for MODE 0 and 1), the first d of the D decoded coordinates.
template <int LOG_D, int BITS, int MODE>
__global__ void __launch_bounds__(fwht_traits<LOG_D>::BLOCK_THREADS)
tq_decode_kernel(const unsigned char* __restrict__ codes, const half_bits* __restrict__ norms,
                 float* __restrict__ out, long long n_rows, int d,
                 const float* __restrict__ signs1, const float* __restrict__ signs2,
                 const float* __restrict__ levels) {
    using TQ = tq_codec_traits<LOG_D, BITS>;
    __shared__ __align__(16) float exchange[TQ::EXCHANGE_SLOTS];
    __shared__ float s_levels[TQ::LEVELS];
#pragma unroll
    for (int k0 = 0; k0 < TQ::LEVELS; k0 += TQ::BLOCK_THREADS) {
        const int k = k0 + threadIdx.x;
        if (TQ::LEVELS % TQ::BLOCK_THREADS == 0 || k < TQ::LEVELS) s_levels[k] = levels[k];
    }

    const int r_local = threadIdx.x / TQ::THREADS_PER_ROW;
    const int t = threadIdx.x % TQ::THREADS_PER_ROW;
    const int lane = threadIdx.x % TQ_WARP_SIZE;
    const long long row = (long long)blockIdx.x * TQ::ROWS_PER_BLOCK + r_local;
    const bool valid = row < n_rows;

    // 1. unpack and look up: one field per vector load, then s2 * level
    unsigned int field[TQ::CHUNKS];
    load_codes<TQ>(codes + (valid ? row : 0) * TQ::ROW_BYTES, t, valid, field);
    __syncthreads();  // s_levels is filled
    constexpr unsigned int mask = (1u << BITS) - 1u;
    float v[TQ::CHUNKS][TQ::VEC];
#pragma unroll
    for (int c = 0; c < TQ::CHUNKS; ++c) {
        float sv[TQ::VEC];
        load_vec<TQ::VEC>(signs2 + (c * TQ::THREADS_PER_ROW + t) * TQ::VEC, sv);
#pragma unroll
        for (int i = 0; i < TQ::VEC; ++i) v[c][i] = s_levels[(field[c] >> (i * BITS)) & mask] * sv[i];
    }

    // 2. the inverse rotation, unnormalized, then s1 and the scale r / D in one multiply
    fwht_row<TQ>(v, exchange + (TQ::EXCHANGE_FLOATS > 0 ? r_local * TQ::D : 0), t, lane);
    const float scale = valid ? tq_half_to_float(norms[row].u) * (1.0f / TQ::D) : 0.0f;
#pragma unroll
    for (int c = 0; c < TQ::CHUNKS; ++c) {
        float sv[TQ::VEC];
        load_vec<TQ::VEC>(signs1 + (c * TQ::THREADS_PER_ROW + t) * TQ::VEC, sv);
#pragma unroll
        for (int i = 0; i < TQ::VEC; ++i) v[c][i] = (v[c][i] * sv[i]) * scale;
    }
    if (valid) store_row<TQ, MODE>(out + row * (MODE == 0 ? TQ::D : d), t, d, v);
}
