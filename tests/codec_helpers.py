"""Shared by the kernel and GPU tests: relative error and code comparison up to boundary ties."""
import numpy as np

from turboquant_lab.packing import unpack_bits_reference


def rel_err(a, b):
    """max |a - b| / max |b|, in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)


def boundary_distance(q, x):
    """Distance of each float64 scaled rotated coordinate to the nearest codebook boundary."""
    x64 = np.asarray(x, np.float64).reshape(-1, q.d)
    r = np.linalg.norm(x64, axis=1, keepdims=True)
    u = np.divide(x64, r, out=np.zeros_like(x64), where=r > 0)
    pad = np.zeros((x64.shape[0], q.d_pad))
    pad[:, : q.d] = u
    rotated = pad @ q._dense64.T if q._hadamard is None else q._hadamard.forward(pad)
    t = np.sqrt(q.d_pad) * rotated
    b = q.codebook.boundaries
    return np.min(np.abs(t[..., None] - b), axis=-1) / np.maximum(1.0, np.abs(t))


def assert_codes_match_except_ties(q, x, codes_a, codes_b):
    """Codes may differ only at a boundary (float32 rounding), and only by one cell; returns how many."""
    a = unpack_bits_reference(np.asarray(codes_a).reshape(-1, q.n_bytes), q.bits, q.d_pad)
    b = unpack_bits_reference(np.asarray(codes_b).reshape(-1, q.n_bytes), q.bits, q.d_pad)
    differ = a != b
    if differ.any():
        assert np.all(boundary_distance(q, x)[differ] < 1e-5)
        assert np.all(np.abs(a[differ].astype(int) - b[differ].astype(int)) == 1)
    return int(differ.sum())
