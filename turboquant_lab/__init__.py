"""TurboQuant Lab: the library behind the course.

Why rotating vectors makes low-bit quantization work, as code: the naive
uniform quantizer, random rotations (dense Haar and the randomized
Walsh-Hadamard transform), Lloyd-Max codebooks for the exact law of a
rotated coordinate, bit packing, and the TurboQuant pipeline.

Every public function takes arrays of shape ``(..., d)`` and returns arrays
of the same array module (NumPy in, NumPy out; CuPy in, CuPy out). Importing
this package imports neither CuPy, matplotlib nor ipywidgets: the GPU path
lives in :mod:`turboquant_lab.gpu` (loaded when a CuPy array arrives), and the
lessons' experiments, figures, apps and exercise checkers in
:mod:`turboquant_lab.course` (imported by the notebooks). ARCHITECTURE.md is
the map.
"""
from . import (backend, codebooks, comparison, coordinate_law, data, metrics, packing, polar, qjl,
               rotation, softmax_attention, turboquant, uniform, validation, walsh_hadamard)
from .backend import get_xp, gpu_available, to_device, to_host
from .codebooks import (GAUSSIAN_MSE, Codebook, CoordinateLaw, ScalarLaw, expected_mse,
                        expected_mse_reference, lloyd_max_codebook, lloyd_max_history, lloyd_max_step,
                        mse_lower_bound, mse_upper_bound, uniform_codebook)
from .comparison import compare_kv_quantizers, format_comparison
from .coordinate_law import coordinate_cdf, coordinate_pdf, unit_coordinate_pdf
from .data import (ESSAY_SEED, KVSample, essay_vector, kv_outlier_channels, load_kv_sample,
                   make_kv_vectors)
from .metrics import channel_rms, max_over_mean, unit_rows
from .packing import pack_bits, pack_bits_reference, packed_nbytes, unpack_bits, unpack_bits_reference
from .polar import (PolarAngleLaw, PolarCoordinates, PolarEncoded, PolarQuant, angle_codebook,
                    polar_angle_law, polar_bits_per_coordinate, polar_expected_mse, polar_inverse,
                    polar_transform)
from .qjl import ProdEncoded, TurboQuantProd
from .rotation import RandomizedHadamard, random_orthogonal, random_signs
from .softmax_attention import AttentionFidelity, attention, attention_fidelity, attention_reference, softmax
from .turboquant import Encoded, TurboQuantMSE, bucketize
from .uniform import (QuantStats, UniformErrorTable, UniformQuantized, quant_stats, uniform_dequantize,
                      uniform_error_table, uniform_levels, uniform_quantize)
from .walsh_hadamard import fwht, fwht_reference, fwht_stages, hadamard, hadamard_op_counts
from . import kv_codecs, llm, tokenizer  # a real LLM and its KV cache (lessons 11, 13)
from .data import PRIDE_AND_PREJUDICE
from .kv_codecs import (FloatCodec, KVCodec, UniformCodec, stored_nbytes, uniform_dequantize_channels,
                        uniform_quantize_channels)
from .llm import KVQuantization, Llama, LlamaConfig, compare_logits, load_smollm2, perplexity
from .tokenizer import BPETokenizer

__version__ = "0.1.0"

__all__ = [
    # backend
    "get_xp", "gpu_available", "to_device", "to_host",
    # the naive quantizer (lessons 01-02)
    "uniform_quantize", "uniform_dequantize", "uniform_levels", "quant_stats",
    "UniformQuantized", "QuantStats", "uniform_error_table", "UniformErrorTable",
    # rotations (lessons 03, 05, 06)
    "random_orthogonal", "random_signs", "RandomizedHadamard",
    "hadamard", "fwht", "fwht_reference", "fwht_stages", "hadamard_op_counts",
    # codebooks (lessons 04, 07)
    "Codebook", "lloyd_max_codebook", "lloyd_max_step", "lloyd_max_history", "uniform_codebook",
    "expected_mse", "expected_mse_reference", "coordinate_pdf", "coordinate_cdf",
    "unit_coordinate_pdf", "GAUSSIAN_MSE", "mse_lower_bound", "mse_upper_bound", "ScalarLaw", "CoordinateLaw",
    # packing and the pipeline (lesson 08)
    "pack_bits", "unpack_bits", "packed_nbytes", "pack_bits_reference", "unpack_bits_reference",
    "TurboQuantMSE", "Encoded", "bucketize",
    # inner products and attention (lessons 10-11)
    "TurboQuantProd", "ProdEncoded", "attention", "softmax", "attention_reference", "attention_fidelity",
    "AttentionFidelity", "compare_kv_quantizers", "format_comparison",
    # PolarQuant (lesson 12)
    "PolarQuant", "PolarEncoded", "polar_transform", "polar_inverse", "PolarCoordinates", "polar_angle_law",
    "PolarAngleLaw", "angle_codebook", "polar_bits_per_coordinate", "polar_expected_mse",
    # a real LLM and its KV cache (lessons 11, 13)
    "load_smollm2", "Llama", "LlamaConfig", "KVQuantization", "compare_logits", "perplexity", "BPETokenizer",
    "KVCodec", "FloatCodec", "UniformCodec", "stored_nbytes", "uniform_quantize_channels",
    "uniform_dequantize_channels", "PRIDE_AND_PREJUDICE", "llm", "kv_codecs", "tokenizer",
    # measurements shared by the lessons
    "max_over_mean", "channel_rms", "unit_rows",
    # data
    "make_kv_vectors", "kv_outlier_channels", "load_kv_sample", "KVSample", "essay_vector", "ESSAY_SEED",
    # submodules, named for what they hold (no function of the same name hides them)
    "backend", "codebooks", "comparison", "coordinate_law", "data", "metrics", "packing", "polar", "qjl",
    "rotation", "softmax_attention", "turboquant", "uniform", "validation", "walsh_hadamard",
]
