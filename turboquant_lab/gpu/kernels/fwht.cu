// fwht.cu: the Walsh-Hadamard transform on the last axis, and the randomized Hadamard
// y = s2 * (H (s1 * x)) * scale fused into the same single pass over memory.
//
// keep in step with turboquant_lab/gpu/emulation.py: emulate_fwht follows this kernel
// (block/row mapping: row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / THREADS_PER_ROW,
// t = threadIdx.x % THREADS_PER_ROW; FLAGS bit 0 = signs1, bit 1 = signs2; the scale
// 1/sqrt(d) is applied once, before signs2; the status flag on element 0 of each row,
// as stored). Its constants are the fwht_config table in fwht_common.cuh (FWHT_CONFIGS
// in gpu/configs.py); gpu/cuda.py launches it from that table.
//
// Instantiated by turboquant_lab/gpu/cuda.py through cupy.RawModule(name_expressions=
// ["fwht_kernel<float, LOG_D, FLAGS, NORMALIZE>"], or half_bits for float16), one
// module per instantiation, compiled on first use: the sign flips and the scale are
// template parameters, so a plain transform reads no signs and multiplies by no 1.
#include "fwht_common.cuh"

#define TQ_FLAG_SIGNS1 1
#define TQ_FLAG_SIGNS2 2

// float32(1 / sqrt(2**LOG_D)), the value numpy.float32(1 / numpy.sqrt(d)) has: a power of
// two times float32(1 / sqrt(2)) = 0x1.6a09e6p-1 for odd LOG_D (tests/gpu/test_kernels.py).
template <int LOG_D>
__device__ __forceinline__ constexpr float tq_inv_sqrt_d() {
    return (LOG_D % 2 ? 0x1.6a09e6p-1f : 1.0f) / (float)(1 << (LOG_D / 2));
}

// x, y: (n_rows, d) C-contiguous, 16-byte aligned rows (8-byte at d = 2, float32; 4-byte
// at d = 2, float16). One row is read once (16-byte loads: 4 floats or 8 halves),
// transformed in registers / shuffles / shared memory, and written once. status: one
// word; TQ_STATUS_NONFINITE is OR-ed in when element 0 of a row is NaN or Inf as stored
// (it is a signed sum of the whole row: non-finite whenever the row holds a NaN or an
// Inf, or its transform overflows the dtype). Nothing here makes the host wait.
template <typename T, int LOG_D, int FLAGS, bool NORMALIZE>
__global__ void __launch_bounds__(fwht_traits<LOG_D, sizeof(T)>::BLOCK_THREADS)
fwht_kernel(const T* __restrict__ x, T* __restrict__ y, long long n_rows,
            const float* __restrict__ signs1, const float* __restrict__ signs2,
            unsigned int* __restrict__ status) {
    using TR = fwht_traits<LOG_D, sizeof(T)>;
    __shared__ __align__(16) float exchange[TR::EXCHANGE_FLOATS > 0 ? TR::EXCHANGE_FLOATS : 4];

    const int r_local = threadIdx.x / TR::THREADS_PER_ROW;
    const int t = threadIdx.x % TR::THREADS_PER_ROW;
    const int lane = threadIdx.x % TQ_WARP_SIZE;
    const long long row = (long long)blockIdx.x * TR::ROWS_PER_BLOCK + r_local;
    const bool valid = row < n_rows;  // every thread stays: all of them take part in the stages

    // a row past the end reads the last row (no branch) and is never stored or flagged
    float v[TR::CHUNKS][TR::VEC];
    load_row<TR, 0>(x + (valid ? row : n_rows - 1) * TR::D, true, t, TR::D, v);
    float* row_smem = exchange + (TR::EXCHANGE_FLOATS > 0 ? r_local * TR::D : 0);
    if constexpr ((FLAGS & TQ_FLAG_SIGNS1) != 0) {
        fwht_row_signed<TR>(v, signs1, row_smem, t, lane);  // signs1 folded into the first stage
    } else {
        fwht_row<TR>(v, row_smem, t, lane);
    }
    if constexpr (NORMALIZE) {
        constexpr float scale = tq_inv_sqrt_d<LOG_D>();
#pragma unroll
        for (int c = 0; c < TR::CHUNKS; ++c) {
#pragma unroll
            for (int i = 0; i < TR::VEC; ++i) v[c][i] = v[c][i] * scale;
        }
    }
    if constexpr ((FLAGS & TQ_FLAG_SIGNS2) != 0) multiply_signs<TR>(signs2, t, v);
    // finite as stored: float16 rounds |v| >= 65520 to inf (and NaN compares false)
    const float a = fabsf(v[0][0]);
    const bool bad = sizeof(T) == 2 ? !(a < 65520.0f) : !(a <= 3.402823466e38f);
    flag_status<TQ_STATUS_NONFINITE>(valid && t == 0 && bad, status);
    if (valid) store_row<TR, 0>(y + row * TR::D, t, TR::D, v);
}
