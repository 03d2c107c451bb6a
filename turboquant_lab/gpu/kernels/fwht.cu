// fwht.cu: the Walsh-Hadamard transform on the last axis, and the randomized Hadamard
// y = s2 * (H (s1 * x)) * scale fused into the same single pass over memory.
//
// keep in step with turboquant_lab/gpu/emulation.py: emulate_fwht follows this kernel
// (block/row mapping: row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / THREADS_PER_ROW,
// t = threadIdx.x % THREADS_PER_ROW; flags bit 0 = signs1, bit 1 = signs2; the scale is
// applied once, before signs2). Its constants are the fwht_config table in
// fwht_common.cuh (FWHT_CONFIGS in gpu/configs.py); gpu/cuda.py launches it from that table.
//
// Instantiated by turboquant_lab/gpu/cuda.py through cupy.RawModule(name_expressions=
// ["fwht_kernel<float, LOG_D>"] or ["fwht_kernel<half_bits, LOG_D>"]), one module per
// (dtype, log2 d), compiled on first use.
#include "fwht_common.cuh"

#define TQ_FLAG_SIGNS1 1
#define TQ_FLAG_SIGNS2 2

// x, y: (n_rows, d) C-contiguous, 16-byte aligned rows (8-byte at d = 2, float32).
// One row is read once (vector loads), transformed in registers / shuffles / shared
// memory, and written once.
template <typename T, int LOG_D>
__global__ void __launch_bounds__(fwht_traits<LOG_D>::BLOCK_THREADS)
fwht_kernel(const T* __restrict__ x, T* __restrict__ y, long long n_rows,
            const float* __restrict__ signs1, const float* __restrict__ signs2, int flags,
            float scale) {
    using TR = fwht_traits<LOG_D>;
    __shared__ __align__(16) float exchange[TR::EXCHANGE_FLOATS > 0 ? TR::EXCHANGE_FLOATS : 4];

    const int r_local = threadIdx.x / TR::THREADS_PER_ROW;
    const int t = threadIdx.x % TR::THREADS_PER_ROW;
    const int lane = threadIdx.x % TQ_WARP_SIZE;
    const long long row = (long long)blockIdx.x * TR::ROWS_PER_BLOCK + r_local;
    const bool valid = row < n_rows;  // every thread stays: all of them take part in the stages

    float v[TR::CHUNKS][TR::VEC];
    load_row<TR>(x + (valid ? row : 0) * TR::D, valid, t, v);
    if (flags & TQ_FLAG_SIGNS1) multiply_signs<TR>(signs1, t, v);
    fwht_row<TR>(v, exchange + (TR::EXCHANGE_FLOATS > 0 ? r_local * TR::D : 0), t, lane);
#pragma unroll
    for (int c = 0; c < TR::CHUNKS; ++c) {
#pragma unroll
        for (int i = 0; i < TR::VEC; ++i) v[c][i] = v[c][i] * scale;
    }
    if (flags & TQ_FLAG_SIGNS2) multiply_signs<TR>(signs2, t, v);
    if (valid) store_row<TR>(y + row * TR::D, t, v);
}
