"""Lesson 08: its experiments, figures, app and exercise checkers."""
import math

import ipywidgets
import numpy as np
import pytest
from app_helpers import bar_heights, line_data, texts
from checker_helpers import assert_fails, assert_passes, stub
from matplotlib.colors import to_rgba
from matplotlib.patches import FancyBboxPatch

from turboquant_lab.codebooks import expected_mse, lloyd_max_codebook
from turboquant_lab.course._checking import NOT_ATTEMPTED
from turboquant_lab.course.l08_the_complete_pipeline import app as lesson_app
from turboquant_lab.course.l08_the_complete_pipeline import checks, experiments, figures
from turboquant_lab.packing import pack_bits, unpack_bits
from turboquant_lab.rotation import RandomizedHadamard
from turboquant_lab.data import make_kv_vectors
from turboquant_lab.turboquant import TurboQuantMSE
from turboquant_lab.uniform import uniform_dequantize, uniform_quantize
from turboquant_lab.walsh_hadamard import fwht


@pytest.mark.parametrize("method", ["hadamard", "dense"])
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_pipeline_error_matches_the_prediction_on_uniform_directions(method, bits):
    # Gaussian vectors have uniformly distributed directions: the prediction is exact in expectation
    r = experiments.compute_pipeline_comparison(bits, method, n=2000, data="gaussian", repeats=1)
    assert r.predicted == pytest.approx(lloyd_max_codebook(bits, 128).mse)
    assert r.relative_mse == pytest.approx(r.predicted, rel=0.05)
    assert r.bits_per_coordinate == bits + 16 / 128          # float16 norm per vector


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_pipeline_on_outlier_data(bits):
    naive = experiments.compute_pipeline_comparison(bits, "none", repeats=1)
    dense = experiments.compute_pipeline_comparison(bits, "dense", repeats=1)
    wht = experiments.compute_pipeline_comparison(bits, "hadamard", repeats=1)
    assert naive.predicted is None
    assert naive.bits_per_coordinate == bits + 32 / 128      # float16 lo and scale per vector
    # a Haar rotation meets the prediction up to the spread of one fixed rotation ...
    assert dense.relative_mse == pytest.approx(dense.predicted, rel=0.10)
    # ... the randomized Hadamard of vectors dominated by 5 channels does better than predicted
    assert 0.7 * wht.predicted < wht.relative_mse < wht.predicted
    # and the naive quantizer is far worse than either, with more bits spent
    assert naive.relative_mse > 4 * max(dense.relative_mse, wht.relative_mse)
    assert naive.relative_mse > 4 * dense.predicted


def test_pipeline_comparison_fields_and_errors():
    r = experiments.compute_pipeline_comparison(3, "hadamard", n=300, d=64, seed=2, repeats=1)
    assert r.per_vector.shape == (300,) and r.example.shape == r.example_hat.shape == (64,)
    assert r.relative_mse == pytest.approx(r.per_vector.mean())
    assert len(r.outlier_channels) == 5
    assert np.linalg.norm(r.example - r.example_hat) < 0.3 * np.linalg.norm(r.example)
    with pytest.raises(ValueError, match="method"):
        experiments.compute_pipeline_comparison(3, "random")
    with pytest.raises(ValueError, match="data"):
        experiments.compute_pipeline_comparison(3, "dense", data="real")
    with pytest.raises(ValueError, match="bits"):
        experiments.compute_pipeline_comparison(9, "dense")


def test_pipeline_by_hand_equals_turboquant():
    # what lesson 08 assembles step by step is what TurboQuantMSE stores and returns
    d, bits, seed = 128, 3, 0
    x = experiments.compute_pipeline_comparison(bits, "none", n=4, d=d, repeats=1).example  # a KV vector
    tq, rh, cb = TurboQuantMSE(d, bits, seed=seed), RandomizedHadamard(d, seed=seed), \
        lloyd_max_codebook(bits, d)
    norm = np.linalg.norm(x)
    t = np.sqrt(d) * rh.signs2 * fwht(rh.signs1 * (x / norm))
    codes = cb.quantize(t)
    enc = tq.encode(x.astype(np.float32)[None])
    np.testing.assert_array_equal(pack_bits(codes, bits), enc.codes[0])
    assert enc.norms[0] == np.float16(norm)
    back = unpack_bits(enc.codes[0], bits, d)
    x_hat = float(np.float16(norm)) * rh.signs1 * fwht(rh.signs2 * cb.centroids[back] / np.sqrt(d))
    np.testing.assert_allclose(tq.decode(enc)[0], x_hat, atol=1e-5 * norm)


def _walk(widget):
    """Every widget inside ``widget`` (depth first)."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_naive_baseline_is_the_float16_convention():
    # lesson 08's naive row is tql.uniform_quantize(x, bits, side_dtype=np.float16), as in lesson 11
    r = experiments.compute_pipeline_comparison(3, "none", n=50, d=64, repeats=1)
    x = make_kv_vectors(50, 64, seed=0)
    q = uniform_quantize(x, 3, side_dtype=np.float16)
    x_hat = uniform_dequantize(q).astype(np.float64)
    x = x.astype(np.float64)
    np.testing.assert_allclose(r.per_vector, np.sum((x - x_hat) ** 2, 1) / np.sum(x ** 2, 1), rtol=1e-6)
    assert r.bits_per_coordinate == q.bits_per_coordinate() == 3 + 32 / 64


def test_pipeline_app_controls_redraw_the_figure(shown_figures):
    app = lesson_app.pipeline_app(n=200)
    toggle = next(w for w in _walk(app) if isinstance(w, ipywidgets.ToggleButtons))
    slider = next(w for w in _walk(app) if isinstance(w, ipywidgets.IntSlider))
    data = next(w for w in _walk(app) if isinstance(w, ipywidgets.Dropdown))
    assert (slider.min, slider.max, toggle.value) == (1, 8, "hadamard")
    for control, value in ((toggle, "none"), (slider, 5), (data, "gaussian"), (toggle, "dense")):
        shown_figures.clear()
        control.value = value
        r = experiments.compute_pipeline_comparison(slider.value, toggle.value, n=200, data=data.value)
        left, right = shown_figures.last.axes[:2]
        (_, original), (_, reconstruction) = line_data(left)[:2]
        np.testing.assert_allclose(original, r.example)
        np.testing.assert_allclose(reconstruction, r.example_hat)
        marks = [line.get_xdata()[0] for line in right.get_lines()]      # measured mean, prediction
        assert marks[0] == pytest.approx(np.log10(r.relative_mse))
        assert len(marks) == (1 if r.predicted is None else 2)
        assert f"{r.bits_per_coordinate:.3f} bits/coord" in left.get_title()
        assert r.label in left.get_title() and f"{r.bits} bits" in left.get_title()


def test_pipeline_figures_draw_the_data_they_are_given():
    r = experiments.compute_pipeline_comparison(2, "dense", n=200, repeats=1)
    ax, ax_h = figures.draw_pipeline_comparison(None, r)
    assert sum(p.get_height() for p in ax_h.patches) == r.n              # every vector in the histogram
    assert ax_h.get_lines()[1].get_xdata()[0] == pytest.approx(np.log10(r.predicted))
    x = r.example
    axes = figures.draw_vector_steps(None, {"input": x, "rotated": fwht(x)}, r.outlier_channels)
    np.testing.assert_allclose(bar_heights(axes[1]), fwht(x))
    colors = [p.get_facecolor() for p in axes[0].patches]
    assert {i for i, c in enumerate(colors) if c == to_rgba(figures.OUTLIER_COLOR)} == set(r.outlier_channels)
    assert f"max/mean {np.abs(x).max() / np.abs(x).mean():.1f}" in axes[0].get_title()


def test_pipeline_diagram_has_the_six_boxes_and_the_notes():
    ax = figures.draw_pipeline_diagram(None, {0: "max/mean 19.9", 5: "50 bytes"})
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == 6
    lefts = [b.get_x() for b in boxes]
    assert lefts == sorted(lefts)                                       # left to right, in order
    shown = texts(ax.figure)
    for title, text in figures.PIPELINE_BOXES:
        assert title in shown and text in shown
    assert "max/mean 19.9" in shown and "50 bytes" in shown
    assert "inverse WHT" in shown and "dequantize" in shown
    # a note is written under its own box
    note = next(t for t in ax.texts if t.get_text() == "50 bytes")
    assert note.get_position()[0] == pytest.approx(boxes[5].get_x() + boxes[5].get_width() / 2)


def pack3_ok(codes):
    out = np.zeros((3 * codes.size + 7) // 8, dtype=np.uint8)
    for i, c in enumerate(codes):
        for j in range(3):
            k = 3 * i + j
            out[k // 8] |= ((int(c) >> j) & 1) << (k % 8)
    return out


def test_pack3():
    assert_passes(checks.check_pack3, pack3_ok)

    def msb_first(codes):
        bits = [(int(c) >> (2 - j)) & 1 for c in codes for j in range(3)]
        return np.packbits(np.array(bits, dtype=np.uint8))

    assert_fails(checks.check_pack3, msb_first, hint="least significant bit first")
    assert_fails(checks.check_pack3, lambda c: c.astype(np.uint8), hint="no packing")
    assert_fails(checks.check_pack3, lambda c: pack3_ok(c).astype(np.int64), hint="uint8")


def unpack3_ok(packed, n):
    stream = np.unpackbits(packed, bitorder="little")
    return np.array([sum(int(stream[3 * i + j]) << j for j in range(3)) for i in range(n)],
                    dtype=np.uint8)


def test_unpack3():
    assert_passes(checks.check_unpack3, unpack3_ok)

    def no_mask(packed, n):
        stream = np.unpackbits(packed, bitorder="little")
        return np.array([sum(int(stream[3 * i + j]) << j for j in range(3)) + 8 * (i % 2)
                         for i in range(n)])

    assert_fails(checks.check_unpack3, no_mask, hint="& 7")


def encode_ok(x, bits, seed=0):
    d = x.shape[-1]
    norms = np.linalg.norm(x, axis=-1)
    rh = RandomizedHadamard(d, seed=seed)
    codes = lloyd_max_codebook(bits, d).quantize(math.sqrt(d) * rh.forward(x / norms[:, None]))
    return pack_bits(codes, bits), norms


def decode_ok(packed, norms, bits, d, seed=0):
    t_hat = lloyd_max_codebook(bits, d).dequantize(unpack_bits(packed, bits, d))
    return RandomizedHadamard(d, seed=seed).inverse(t_hat / math.sqrt(d)) * norms[:, None]


def test_roundtrip():
    assert_passes(checks.check_roundtrip, encode_ok, decode_ok)

    def unscaled_encode(x, bits, seed=0):
        d = x.shape[-1]
        norms = np.linalg.norm(x, axis=-1)
        rh = RandomizedHadamard(d, seed=seed)
        codes = lloyd_max_codebook(bits, d).quantize(rh.forward(x / norms[:, None]))
        return pack_bits(codes, bits), norms

    def no_norm_decode(packed, norms, bits, d, seed=0):
        return decode_ok(packed, np.ones_like(norms), bits, d, seed)

    def forward_decode(packed, norms, bits, d, seed=0):
        t_hat = lloyd_max_codebook(bits, d).dequantize(unpack_bits(packed, bits, d))
        return RandomizedHadamard(d, seed=seed).forward(t_hat / math.sqrt(d)) * norms[:, None]

    assert_fails(checks.check_roundtrip, unscaled_encode, decode_ok, hint="by sqrt(d)")
    assert_fails(checks.check_roundtrip, encode_ok, no_norm_decode, hint="multiply by the norms")
    assert_fails(checks.check_roundtrip, encode_ok, forward_decode, hint="rh.inverse")
    v = checks.check_roundtrip(encode_ok, stub)
    assert v.status == NOT_ATTEMPTED

    # the fallback hints guide without printing the solution
    def scrambled(packed, norms, bits, d, seed=0):
        return decode_ok(packed, norms, bits, d, seed)[::-1]

    v = checks.check_roundtrip(encode_ok, scrambled)
    assert v.status == "failed" and "rh.inverse(cb.dequantize" not in v.message


def predicted_error_ok(bits, d, n_outliers, outlier_scale, n_samples=100_000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, d))
    x[:, :n_outliers] *= outlier_scale
    t = x.sum(axis=1) / np.linalg.norm(x, axis=1)
    cb = lloyd_max_codebook(bits, d)
    return float(np.mean((t - cb.dequantize(cb.quantize(t))) ** 2))


def test_predicted_error():
    assert_passes(checks.check_predicted_error, predicted_error_ok)
    assert_fails(checks.check_predicted_error, lambda b, d, n, s: lloyd_max_codebook(b, d).mse,
                 hint="the codebook's own prediction")
    assert_fails(checks.check_predicted_error,
                 lambda b, d, n, s: expected_mse(lloyd_max_codebook(b, d).centroids, n),
                 hint="Include them")
    v = checks.check_predicted_error(lambda b, d, n, s: 0.5)
    assert v.status == "failed" and "x.sum(axis=1)" not in v.message
