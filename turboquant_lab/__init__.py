"""TurboQuant Lab: the library behind the course.

Why rotating vectors makes low-bit quantization work, as code: the naive
uniform quantizer, random rotations (dense Haar and the randomized
Walsh-Hadamard transform), Lloyd-Max codebooks for the exact law of a
rotated coordinate, bit packing, and the TurboQuant pipeline.

Every public function takes arrays of shape ``(..., d)`` and returns arrays
of the same array module (NumPy in, NumPy out; CuPy in, CuPy out). Importing
this package imports neither CuPy, matplotlib nor ipywidgets: the plots and
widgets of the lessons live in :mod:`turboquant_lab.plots`,
:mod:`turboquant_lab.widgets` and :mod:`turboquant_lab.checks`, imported on
demand.
"""
from . import backend, codebooks, data, packing, rotation, turboquant, uniform
from .attention import AttentionFidelity, attention, attention_fidelity, attention_reference, softmax
from .backend import get_xp, gpu_available, to_device, to_host
from .codebooks import (GAUSSIAN_MSE, Codebook, coordinate_cdf, coordinate_pdf, expected_mse,
                        expected_mse_reference, lloyd_max_codebook, lloyd_max_history,
                        lloyd_max_step, mse_lower_bound, mse_upper_bound, uniform_codebook,
                        unit_coordinate_pdf)
from .data import KVSample, kv_outlier_channels, load_kv_sample, make_kv_vectors
from .hadamard import fwht, fwht_reference, fwht_stages, hadamard, hadamard_op_counts
from .packing import pack_bits, pack_bits_reference, packed_nbytes, unpack_bits, unpack_bits_reference
from .rotation import RandomizedHadamard, random_orthogonal, random_signs
from .turboquant import Encoded, ProdEncoded, TurboQuantMSE, TurboQuantProd, bucketize
from .uniform import (QuantStats, UniformQuantized, quant_stats, uniform_dequantize, uniform_levels,
                      uniform_quantize)

__version__ = "0.1.0"

__all__ = [
    # backend
    "get_xp", "gpu_available", "to_device", "to_host",
    # the naive quantizer (lessons 01-02)
    "uniform_quantize", "uniform_dequantize", "uniform_levels", "quant_stats",
    "UniformQuantized", "QuantStats",
    # rotations (lessons 03, 05, 06)
    "random_orthogonal", "random_signs", "RandomizedHadamard",
    "hadamard", "fwht", "fwht_reference", "fwht_stages", "hadamard_op_counts",
    # codebooks (lessons 04, 07)
    "Codebook", "lloyd_max_codebook", "lloyd_max_step", "lloyd_max_history", "uniform_codebook",
    "expected_mse", "expected_mse_reference", "coordinate_pdf", "coordinate_cdf",
    "unit_coordinate_pdf", "GAUSSIAN_MSE", "mse_lower_bound", "mse_upper_bound",
    # packing and the pipeline (lesson 08)
    "pack_bits", "unpack_bits", "packed_nbytes", "pack_bits_reference", "unpack_bits_reference",
    "TurboQuantMSE", "Encoded", "bucketize",
    # inner products and attention (lessons 10-11)
    "TurboQuantProd", "ProdEncoded", "attention", "softmax", "attention_reference", "attention_fidelity",
    "AttentionFidelity",
    # data
    "make_kv_vectors", "kv_outlier_channels", "load_kv_sample", "KVSample",
    # submodules (``hadamard`` and ``attention`` are the functions of those names:
    # import from the modules with ``from turboquant_lab.hadamard import ...``)
    "backend", "codebooks", "data", "packing", "rotation", "turboquant", "uniform",
]
