// turboquant.cu: TurboQuantMSE encode and decode (Hadamard rotation), each one fused pass.
//
// encode: x (n, d) float32 -> norms (n,) float32 and packed codes (n, ceil(d * bits / 8)):
//   r = ||x|| (per-thread sums, xor tree in the warp, then across warps),
//   t = s2 * H(s1 * x) / r   (= sqrt(d) * D2 H_norm D1 x / r, the scaled rotated coordinate),
//   code = #{k : thresholds[k] <= t} by binary search over the thresholds in shared memory,
//   codes packed LSB-first into a little-endian bit stream (packing.pack_bits' layout):
//   code j of a row occupies bits [j * bits, (j + 1) * bits) of the row's bytes.
// decode: packed codes + float16 norms -> x_hat (n, d) float32:
//   x_hat = s1 * H(s2 * levels[code]) * (r / d)   (= r * D1 H_norm D2 (centroids / sqrt(d))).
// bits 1 .. 8; d a power of two, 2 .. 8192 (gpu/drivers.py pads other d with zeros).
//
// keep in step with turboquant_lab/gpu/emulation.py: emulate_encode and emulate_decode
// follow these kernels (the same FWHT building blocks and table as fwht.cu, in
// fwht_common.cuh; MAX_BITS = 8; the packed-word offset of a thread's vector load
//   off = r_local * n_bytes * 8 + ((c * THREADS_PER_ROW + t) * VEC) * bits,
// atomicOr into word off / 32 and, when the field crosses it, word off / 32 + 1; the
// binary search `code += step if t >= thr[code + step - 1]`, step = 2**(bits-1) .. 1).
#include "fwht_common.cuh"

#define TQ_MAX_BITS 8

template <int LOG_D>
struct tq_codec_traits : fwht_traits<LOG_D> {
    using base = fwht_traits<LOG_D>;
    static constexpr int MAX_BITS = TQ_MAX_BITS;
    static constexpr int MAX_LEVELS = 1 << MAX_BITS;
    // the packed codes of one block's rows, at the most bits
    static constexpr int PACK_BYTES = base::ROWS_PER_BLOCK * ((base::D * MAX_BITS + 7) / 8);
    static constexpr int PACK_WORDS = (PACK_BYTES + 3) / 4 + 1;
    static constexpr int RED_FLOATS = base::WARPS_PER_ROW > 1 ? base::ROWS_PER_BLOCK * base::WARPS_PER_ROW : 1;
    static constexpr int EXCHANGE_SLOTS = base::EXCHANGE_FLOATS > 0 ? base::EXCHANGE_FLOATS : 4;
    static constexpr int SMEM_BYTES = 4 * (EXCHANGE_SLOTS + MAX_LEVELS + RED_FLOATS + PACK_WORDS);

    static_assert(base::VEC * MAX_BITS <= 32, "the codes of one vector load fit one 32-bit word");
    static_assert(SMEM_BYTES <= 48 * 1024, "static shared memory is limited to 48 KiB");
};

// Number of thresholds <= v (thresholds ascending, 2**bits - 1 of them): branch-free
// binary search, bits steps. Equals np.searchsorted(thr, v, side="right"), ties included.
__device__ __forceinline__ int tq_bucket(float v, const float* thr, int bits) {
    int code = 0;
    for (int step = 1 << (bits - 1); step > 0; step >>= 1) {
        if (v >= thr[code + step - 1]) code += step;
    }
    return code;
}

// x: (n_rows, d) float32, C-contiguous, 16-byte aligned rows (zero-padded to d by gpu/drivers.py).
// codes: (n_rows, ceil(d * bits / 8)) uint8, 4-byte aligned. norms: (n_rows,) float32.
template <int LOG_D>
__global__ void __launch_bounds__(fwht_traits<LOG_D>::BLOCK_THREADS)
tq_encode_kernel(const float* __restrict__ x, unsigned char* __restrict__ codes,
                 float* __restrict__ norms, long long n_rows,
                 const float* __restrict__ signs1, const float* __restrict__ signs2,
                 const float* __restrict__ thresholds, int bits) {
    using TR = tq_codec_traits<LOG_D>;
    __shared__ __align__(16) float exchange[TR::EXCHANGE_SLOTS];
    __shared__ float s_thr[TR::MAX_LEVELS];
    __shared__ float s_red[TR::RED_FLOATS];
    __shared__ unsigned int s_packed[TR::PACK_WORDS];

    const int n_bytes = (TR::D * bits + 7) >> 3;
    const long long row0 = (long long)blockIdx.x * TR::ROWS_PER_BLOCK;
    const int rows_here = n_rows - row0 < TR::ROWS_PER_BLOCK ? (int)(n_rows - row0) : TR::ROWS_PER_BLOCK;
    const int bytes_here = rows_here * n_bytes;
    for (int k = threadIdx.x; k < (1 << bits) - 1; k += TR::BLOCK_THREADS) s_thr[k] = thresholds[k];
    for (int k = threadIdx.x; k < (bytes_here + 3) >> 2; k += TR::BLOCK_THREADS) s_packed[k] = 0u;
    __syncthreads();

    const int r_local = threadIdx.x / TR::THREADS_PER_ROW;
    const int t = threadIdx.x % TR::THREADS_PER_ROW;
    const int lane = threadIdx.x % TQ_WARP_SIZE;
    const long long row = row0 + r_local;
    const bool valid = row < n_rows;

    float v[TR::CHUNKS][TR::VEC];
    load_row<TR>(x + (valid ? row : 0) * TR::D, valid, t, v);

    // 1. the norm: this thread's squares in order (c, then i), then the row's sum
    float s = 0.0f;
#pragma unroll
    for (int c = 0; c < TR::CHUNKS; ++c) {
#pragma unroll
        for (int i = 0; i < TR::VEC; ++i) s = __fadd_rn(s, __fmul_rn(v[c][i], v[c][i]));
    }
    s = row_sum<TR>(s, s_red, r_local, t, lane);
    const float norm = __fsqrt_rn(s);
    const float inv = norm > 0.0f ? __frcp_rn(norm) : 0.0f;  // a zero vector encodes t = 0
    if (valid && t == 0) norms[row] = norm;

    // 2. the rotation, unnormalized: sqrt(d) / sqrt(d) cancels
    multiply_signs<TR>(signs1, t, v);
    fwht_row<TR>(v, exchange + (TR::EXCHANGE_FLOATS > 0 ? r_local * TR::D : 0), t, lane);

    // 3. codes, packed: one word per vector load, OR-ed into the block's bit stream
    const int field = TR::VEC * bits;
#pragma unroll
    for (int c = 0; c < TR::CHUNKS; ++c) {
        const int first = (c * TR::THREADS_PER_ROW + t) * TR::VEC;
        float sv[TR::VEC];
        load_vec<TR::VEC>(signs2 + first, sv);
        unsigned int word = 0u;
#pragma unroll
        for (int i = 0; i < TR::VEC; ++i) {
            const float tv = (v[c][i] * sv[i]) * inv;
            word |= (unsigned int)tq_bucket(tv, s_thr, bits) << (i * bits);
        }
        if (valid) {
            const int off = r_local * n_bytes * 8 + first * bits;
            const int w = off >> 5, sh = off & 31;
            atomicOr(&s_packed[w], word << sh);
            if (sh + field > 32) atomicOr(&s_packed[w + 1], word >> (32 - sh));
        }
    }
    __syncthreads();

    // 4. the block's rows are one contiguous range of bytes: 4-byte stores, then the tail
    unsigned char* out = codes + row0 * n_bytes;
    const int full = bytes_here >> 2;
    for (int k = threadIdx.x; k < full; k += TR::BLOCK_THREADS) {
        reinterpret_cast<unsigned int*>(out)[k] = s_packed[k];
    }
    const unsigned char* packed_bytes = reinterpret_cast<const unsigned char*>(s_packed);
    for (int k = 4 * full + threadIdx.x; k < bytes_here; k += TR::BLOCK_THREADS) out[k] = packed_bytes[k];
}

// codes: (n_rows, ceil(d * bits / 8)) uint8, 4-byte aligned; norms: (n_rows,) float16;
// levels: (2**bits,) float32 centroids in scaled units; out: (n_rows, d) float32.
template <int LOG_D>
__global__ void __launch_bounds__(fwht_traits<LOG_D>::BLOCK_THREADS)
tq_decode_kernel(const unsigned char* __restrict__ codes, const half_bits* __restrict__ norms,
                 float* __restrict__ out, long long n_rows,
                 const float* __restrict__ signs1, const float* __restrict__ signs2,
                 const float* __restrict__ levels, int bits) {
    using TR = tq_codec_traits<LOG_D>;
    __shared__ __align__(16) float exchange[TR::EXCHANGE_SLOTS];
    __shared__ float s_levels[TR::MAX_LEVELS];
    __shared__ unsigned int s_packed[TR::PACK_WORDS];

    const int n_bytes = (TR::D * bits + 7) >> 3;
    const long long row0 = (long long)blockIdx.x * TR::ROWS_PER_BLOCK;
    const int rows_here = n_rows - row0 < TR::ROWS_PER_BLOCK ? (int)(n_rows - row0) : TR::ROWS_PER_BLOCK;
    const int bytes_here = rows_here * n_bytes;
    for (int k = threadIdx.x; k < (1 << bits); k += TR::BLOCK_THREADS) s_levels[k] = levels[k];
    const unsigned char* in = codes + row0 * n_bytes;
    const int full = bytes_here >> 2;
    for (int k = threadIdx.x; k < full; k += TR::BLOCK_THREADS) {
        s_packed[k] = reinterpret_cast<const unsigned int*>(in)[k];
    }
    unsigned char* packed_bytes = reinterpret_cast<unsigned char*>(s_packed);
    for (int k = 4 * full + threadIdx.x; k < bytes_here; k += TR::BLOCK_THREADS) packed_bytes[k] = in[k];
    __syncthreads();

    const int r_local = threadIdx.x / TR::THREADS_PER_ROW;
    const int t = threadIdx.x % TR::THREADS_PER_ROW;
    const int lane = threadIdx.x % TQ_WARP_SIZE;
    const long long row = row0 + r_local;
    const bool valid = row < n_rows;

    // 1. unpack and look up: one word per vector load, then s2 * level
    const int field = TR::VEC * bits;
    const unsigned int mask = (1u << bits) - 1u;
    float v[TR::CHUNKS][TR::VEC];
#pragma unroll
    for (int c = 0; c < TR::CHUNKS; ++c) {
        const int first = (c * TR::THREADS_PER_ROW + t) * TR::VEC;
        unsigned int word = 0u;
        if (valid) {
            const int off = r_local * n_bytes * 8 + first * bits;
            const int w = off >> 5, sh = off & 31;
            unsigned long long f = s_packed[w];
            if (sh + field > 32) f |= (unsigned long long)s_packed[w + 1] << 32;
            word = (unsigned int)(f >> sh);
        }
        float sv[TR::VEC];
        load_vec<TR::VEC>(signs2 + first, sv);
#pragma unroll
        for (int i = 0; i < TR::VEC; ++i) v[c][i] = s_levels[(word >> (i * bits)) & mask] * sv[i];
    }

    // 2. the inverse rotation, unnormalized, then s1 and the scale r / d in one multiply
    fwht_row<TR>(v, exchange + (TR::EXCHANGE_FLOATS > 0 ? r_local * TR::D : 0), t, lane);
    const float scale = valid ? tq_half_to_float(norms[row].u) * (1.0f / TR::D) : 0.0f;
#pragma unroll
    for (int c = 0; c < TR::CHUNKS; ++c) {
        float sv[TR::VEC];
        load_vec<TR::VEC>(signs1 + (c * TR::THREADS_PER_ROW + t) * TR::VEC, sv);
#pragma unroll
        for (int i = 0; i < TR::VEC; ++i) v[c][i] = (v[c][i] * sv[i]) * scale;
    }
    if (valid) store_row<TR>(out + row * TR::D, t, v);
}
