"""One ipywidgets app per interactive figure of the essay.

Pattern (see STYLE.md): a pure ``compute_*`` function returns the numbers a
figure shows (tests call it directly, setting the "slider" by argument); a
``draw_*`` function in :mod:`turboquant_lab.plots` only plots; and an
``*_app()`` function wires them with ``ipywidgets.interactive_output`` (or
``interact``) into an explicit layout and returns the widget. Only the
ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1):
``interact``, ``interactive``, ``interactive_output``, the basic controls,
``Output``, ``HBox``/``VBox``, ``observe`` and ``on_click``.

The file is organised in one section per lesson; keep each lesson's apps
inside its section.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from . import plots


# ---- lessons 01-02 ----------------------------------------------------------
from dataclasses import dataclass as _dataclass  # noqa: E402 (lessons 01-02 only)

#: Seed of the essay's 64-coordinate vector in lesson 02: ``make_kv_vectors(1, 64, seed=15)``.
#: Chosen because its five outlier channels all stand out (|x| > 7 against a
#: normal spread of 1) and its max/mean ratio (22.3) is close to the essay's 22.1.
OUTLIER_DEMO_SEED = 15


def _ruler_example():
    """The small vector of lesson 01: 8 standard normal values, rounded to 2 decimals."""
    return np.round(np.random.default_rng(0).standard_normal(8), 2)


@_dataclass
class RulerResult:
    """What the ruler of lesson 01 shows for one vector at one bit width.

    Attributes
    ----------
    x, x_hat, error : (d,) ndarray
        The values, their reconstructions and ``x - x_hat``.
    codes : (d,) uint8 ndarray
        Level index of each value.
    levels : (2**bits,) ndarray
        The quantizer's levels ``lo + k * scale``.
    bits : int
    lo, hi, scale : float
        ``min x``, ``max x`` and the slot width ``(hi - lo) / (2**bits - 1)``.
    mse, max_abs_error : float
        Mean of ``error**2`` and max of ``|error|`` (never above ``scale / 2``).
    """

    x: np.ndarray
    bits: int
    lo: float
    hi: float
    scale: float
    levels: np.ndarray
    codes: np.ndarray
    x_hat: np.ndarray
    error: np.ndarray
    mse: float
    max_abs_error: float


def compute_ruler(x, bits: int) -> RulerResult:
    """Quantize one vector with a ``bits``-bit min-max ruler and return what the figure shows.

    Parameters
    ----------
    x : (d,) float array
        One vector (lists are accepted).
    bits : int, 1 to 8

    Returns
    -------
    RulerResult

    Raises
    ------
    ValueError
        If ``x`` is not one vector (1-d), is empty or holds NaN/Inf, or
        ``bits`` is outside 1..8.
    TypeError
        If ``x`` is not floating point or ``bits`` is not an integer.

    Notes
    -----
    ``scale = (max x - min x) / (2**bits - 1)``, ``codes = round((x - min x) / scale)``,
    ``x_hat = min x + codes * scale`` (:func:`turboquant_lab.uniform.uniform_quantize`).

    Examples
    --------
    >>> r = compute_ruler([0.0, 0.2, 0.9, 3.0], bits=2)
    >>> r.codes.tolist(), r.x_hat.tolist()
    ([0, 0, 1, 3], [0.0, 0.0, 1.0, 3.0])
    """
    from ._validate import as_float_array
    from .uniform import uniform_dequantize, uniform_levels, uniform_quantize

    x = as_float_array(x, "x")
    if x.ndim != 1:
        raise ValueError(f"x must be one vector of shape (d,), got shape {tuple(x.shape)}: "
                         f"pass a single row, e.g. x[0]")
    q = uniform_quantize(x, bits)
    x_hat = uniform_dequantize(q)
    err = x - x_hat
    lo, hi = float(x.min()), float(x.max())
    return RulerResult(x=x, bits=q.bits, lo=lo, hi=hi, scale=float(q.scale),
                       levels=uniform_levels(lo, hi, q.bits), codes=q.codes, x_hat=x_hat,
                       error=err, mse=float(np.mean(err ** 2)),
                       max_abs_error=float(np.max(np.abs(err))))


@_dataclass
class UniformErrorTable:
    """Error of the min-max quantizer against bits, over many vectors.

    Attributes
    ----------
    bits : (k,) int ndarray
    mse : (k,) ndarray
        Mean over vectors and coordinates of ``(x - x_hat)**2``.
    model_mse : (k,) ndarray
        Mean over vectors of ``scale**2 / 12`` (uniform rounding noise).
    mse_ratio : (k,) ndarray
        ``mse / model_mse``.
    step : (k,) ndarray
        ``mse[b-1] / mse[b]``: how much one more bit divides the MSE (NaN first).
    model_step : (k,) ndarray
        The same ratio for the model: ``((2**b - 1) / (2**(b-1) - 1))**2`` (NaN first).
    worst_ratio : (k,) ndarray
        Max over all vectors and coordinates of ``|x - x_hat| / scale`` (at most 0.5
        in exact arithmetic).
    """

    bits: np.ndarray
    mse: np.ndarray
    model_mse: np.ndarray
    mse_ratio: np.ndarray
    step: np.ndarray
    model_step: np.ndarray
    worst_ratio: np.ndarray


def compute_uniform_error_vs_bits(x, bits=range(1, 9)) -> UniformErrorTable:
    """Measure the MSE, the scale²/12 model and the worst error/scale at each bit width.

    Parameters
    ----------
    x : (n, d) or (..., d) float array
        Vectors, each quantized with its own min-max range.
    bits : iterable of int, each 1 to 8
        Bit widths, in increasing order.

    Returns
    -------
    UniformErrorTable

    Notes
    -----
    If the rounding error of a coordinate is uniform on ``[-scale/2, scale/2]``
    its mean square is ``scale**2 / 12``; with ``scale = range / (2**b - 1)``
    one more bit divides it by ``((2**(b+1) - 1) / (2**b - 1))**2``, which is
    9, 5.44, 4.59, ... and tends to 4. Cost: one quantization of ``x`` per bit width.

    Examples
    --------
    >>> t = compute_uniform_error_vs_bits(np.random.default_rng(0).standard_normal((100, 64)), [3, 4])
    >>> bool(t.worst_ratio.max() <= 0.5)
    True
    """
    from ._validate import as_float_array, check_bits
    from .uniform import quant_stats

    x = as_float_array(x, "x")
    bits = np.array([check_bits(b) for b in bits], dtype=int)
    if bits.size == 0 or np.any(np.diff(bits) <= 0):
        raise ValueError(f"bits must be a non-empty increasing sequence, got {bits.tolist()}")
    mse, model, worst = [], [], []
    for b in bits:
        s = quant_stats(x, int(b))
        sw = np.asarray(s.slot_width, dtype=np.float64)
        mse.append(float(np.mean(s.mse)))
        model.append(float(np.mean(sw ** 2 / 12)))
        ok = sw > 0
        worst.append(float(np.max(np.asarray(s.max_abs_error)[ok] / sw[ok])) if ok.any() else 0.0)
    mse, model = np.array(mse), np.array(model)
    step = np.concatenate([[np.nan], mse[:-1] / mse[1:]])
    levels = 2.0 ** bits - 1
    model_step = np.concatenate([[np.nan], (levels[1:] / levels[:-1]) ** 2 *
                                 np.where(np.diff(bits) == 1, 1.0, np.nan)])
    return UniformErrorTable(bits=bits, mse=mse, model_mse=model, mse_ratio=mse / model, step=step,
                      model_step=model_step, worst_ratio=np.array(worst))


def ruler_app(x=None, bits: int = 2):
    """Lesson 01's ruler: a bits slider (1 to 8) that redraws the levels and the reconstruction.

    Parameters
    ----------
    x : (d,) float array, optional
        The vector to quantize (default: 8 standard normal values, seed 0,
        rounded to 2 decimals).
    bits : int
        Initial slider position.

    Returns
    -------
    ipywidgets.VBox
        ``children = (slider, summary HTML, plot Output)``.
    """
    from IPython.display import display

    x = _ruler_example() if x is None else x
    compute_ruler(x, bits)  # validate before building anything
    slider = widgets.IntSlider(value=bits, min=1, max=8, step=1, description="bits")
    summary = widgets.HTML()

    def update(bits):
        r = compute_ruler(x, bits)
        summary.value = (f"<b>{bits} bits = {2 ** bits} levels</b> &nbsp; slot width {r.scale:.4g}"
                         f" &nbsp; MSE {r.mse:.4g} &nbsp; max |error| {r.max_abs_error:.4g}"
                         f" (bound scale/2 = {r.scale / 2:.4g})")
        fig, ax = plt.subplots(figsize=(8, 3))
        plots.draw_ruler(ax, r)
        fig.tight_layout()
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(update, {"bits": slider})
    return widgets.VBox([slider, summary, out])


@_dataclass
class OutlierDemo:
    """What the essay's outlier interactive shows at one bit width.

    Attributes
    ----------
    bits, seed : int
    x, x_hat : (d,) float64 ndarray
        The vector (``make_kv_vectors(1, d, seed=seed)[0]``) and its naive reconstruction.
    codes : (d,) uint8 ndarray
    levels : (2**bits,) ndarray
    outliers, normal : int ndarray
        Indices of the outlier channels (``kv_outlier_channels``) and of the others.
    mse, range, slot_width : float
        The essay's figures (:func:`turboquant_lab.uniform.quant_stats`).
    wasted_slots : int
        Levels that no coordinate maps to.
    max_abs_error : float
    slot_counts_normal, slot_counts_outlier : (2**bits,) int ndarray
        How many normal / outlier coordinates each level holds.
    mse_normal : float
        MSE of the normal coordinates, quantized together with the outliers.
    mse_normal_alone : float
        MSE of the normal coordinates quantized on their own (their own min-max range).
    """

    bits: int
    seed: int
    x: np.ndarray
    x_hat: np.ndarray
    codes: np.ndarray
    levels: np.ndarray
    outliers: np.ndarray
    normal: np.ndarray
    mse: float
    range: float
    slot_width: float
    wasted_slots: int
    max_abs_error: float
    slot_counts_normal: np.ndarray
    slot_counts_outlier: np.ndarray
    mse_normal: float
    mse_normal_alone: float

    @property
    def normal_slots_used(self) -> int:
        """Number of distinct levels the normal coordinates land on."""
        return int(np.count_nonzero(self.slot_counts_normal))


def compute_outlier_demo(bits: int, seed: int = OUTLIER_DEMO_SEED, d: int = 64,
                         n_outliers: int = 5, outlier_scale: float = 20.0) -> OutlierDemo:
    """The essay's outlier vector quantized naively at ``bits`` bits, and its figures.

    Parameters
    ----------
    bits : int, 1 to 8
    seed : int
        Seed of :func:`turboquant_lab.data.make_kv_vectors` (default: the course's
        essay vector, :data:`OUTLIER_DEMO_SEED`).
    d, n_outliers, outlier_scale
        As in :func:`turboquant_lab.data.make_kv_vectors` (the essay: 64, 5, 20).

    Returns
    -------
    OutlierDemo

    Raises
    ------
    ValueError, TypeError
        For bits outside 1..8 or a bad seed/dimension (from the library's checks).

    Examples
    --------
    >>> r = compute_outlier_demo(2)
    >>> r.normal_slots_used <= 2, r.wasted_slots >= 1
    (True, True)
    """
    from .data import kv_outlier_channels, make_kv_vectors
    from .uniform import quant_stats, uniform_dequantize, uniform_levels, uniform_quantize

    x = make_kv_vectors(1, d, n_outliers=n_outliers, outlier_scale=outlier_scale,
                        seed=seed)[0].astype(np.float64)
    outliers = kv_outlier_channels(d, n_outliers, seed)
    normal = np.setdiff1d(np.arange(d), outliers)
    q = uniform_quantize(x, bits)
    x_hat = uniform_dequantize(q)
    s = quant_stats(x, bits)
    n_levels = 2 ** q.bits
    err = x - x_hat
    alone = quant_stats(x[normal], bits).mse if len(normal) else 0.0
    return OutlierDemo(
        bits=q.bits, seed=int(seed), x=x, x_hat=x_hat, codes=q.codes,
        levels=uniform_levels(x.min(), x.max(), q.bits), outliers=outliers, normal=normal,
        mse=s.mse, range=s.range, slot_width=s.slot_width, wasted_slots=s.wasted_slots,
        max_abs_error=s.max_abs_error,
        slot_counts_normal=np.bincount(q.codes[normal], minlength=n_levels),
        slot_counts_outlier=np.bincount(q.codes[outliers], minlength=n_levels),
        mse_normal=float(np.mean(err[normal] ** 2)) if len(normal) else 0.0,
        mse_normal_alone=float(alone))


def format_outlier_figures(r: OutlierDemo) -> str:
    """The four figures of the essay's panel (MSE, Range, Slot Width, Wasted Slots) as HTML."""
    return (f"<b>{r.bits} bits = {2 ** r.bits} levels</b> &nbsp;|&nbsp; MSE {r.mse:.4g}"
            f" &nbsp;|&nbsp; Range {r.range:.4g} &nbsp;|&nbsp; Slot width {r.slot_width:.4g}"
            f" &nbsp;|&nbsp; Wasted slots {r.wasted_slots} of {2 ** r.bits}"
            f"<br>the {len(r.normal)} normal channels land on {r.normal_slots_used} of the"
            f" {2 ** r.bits} levels")


def outlier_app(seed: int = OUTLIER_DEMO_SEED, bits: int = 2):
    """Lesson 02: the essay's outlier interactive (bars before/after, bits slider, four figures).

    Parameters
    ----------
    seed : int
        Seed of the vector (default :data:`OUTLIER_DEMO_SEED`).
    bits : int
        Initial slider position (1 to 8).

    Returns
    -------
    ipywidgets.VBox
        ``children = (slider, figures HTML, plot Output)``; the HTML holds
        :func:`format_outlier_figures` of the current setting.
    """
    from IPython.display import display

    compute_outlier_demo(bits, seed)  # validate before building anything
    slider = widgets.IntSlider(value=bits, min=1, max=8, step=1, description="bits")
    figures = widgets.HTML()

    def update(bits):
        r = compute_outlier_demo(bits, seed)
        figures.value = format_outlier_figures(r)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
        plots.draw_outlier_bars(axes, r)
        fig.tight_layout()
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(update, {"bits": slider})
    return widgets.VBox([slider, figures, out])
# ---- end lessons 01-02 ------------------------------------------------------

# ---- lessons 03-04 ----------------------------------------------------------
from dataclasses import dataclass as _dataclass  # noqa: E402  (lessons 03-04)

#: The essay's 64-coordinate vector: 5 outlier channels, 20x. Lesson 03 rotates the
#: vector that lesson 02 quantizes: keep ESSAY_SEED equal to OUTLIER_DEMO_SEED (a test checks).
ESSAY_D, ESSAY_SEED = 64, 15


def essay_vector(seed: int = ESSAY_SEED, d: int = ESSAY_D):
    """The essay's outlier vector and its outlier channels.

    Returns
    -------
    x : (d,) float64 ndarray
        ``make_kv_vectors(1, d, seed=seed)[0]``: N(0, 1) coordinates, 5 channels 20x larger.
    outliers : (5,) int ndarray
        The outlier channels, ``kv_outlier_channels(d, 5, seed)``.
    """
    from .data import kv_outlier_channels, make_kv_vectors

    return (make_kv_vectors(1, d, seed=seed)[0].astype(np.float64),
            kv_outlier_channels(d, 5, seed=seed))


def max_mean_ratio(x):
    """The essay's spikiness figure ``max_i |x_i| / mean_i |x_i|`` on the last axis.

    Parameters
    ----------
    x : (..., d) float ndarray

    Returns
    -------
    ratio : float for a single vector, ``(...)`` ndarray for a batch
        1 for a vector whose coordinates all have the same magnitude, up to
        ``d`` for a vector with a single non-zero coordinate.

    Examples
    --------
    >>> max_mean_ratio(np.array([1.0, -1.0, 1.0, 1.0]))
    1.0
    >>> max_mean_ratio(np.array([4.0, 0.0, 0.0, 0.0]))
    4.0
    """
    from ._validate import as_float_array

    x = as_float_array(x, "x")
    a = np.abs(x)
    peak = a.max(axis=-1, keepdims=True)
    if np.any(peak == 0):
        raise ValueError("x has an all-zero vector, whose max/mean ratio is undefined; "
                         "pass vectors with at least one non-zero coordinate")
    r = 1.0 / (a / peak).mean(axis=-1)  # scaled by the peak first: no underflow for tiny x
    return float(r) if x.ndim == 1 else r


@_dataclass
class RotationResult:
    """One press of the Rotate button: a vector before and after ``y = R x``.

    Attributes
    ----------
    before, after, restored : (d,) float64 ndarray
        ``x``, ``R x`` and ``R^T (R x)``.
    seed : int
        Seed of the Haar rotation ``R = random_orthogonal(d, seed)``.
    outliers : (k,) int ndarray
        Indices drawn in red before the rotation.
    max_mean_before, max_mean_after : float
        ``max|x_i| / mean|x_i|`` of ``x`` and of ``R x``.
    norm_before, norm_after : float
        ``||x||`` and ``||R x||`` (equal up to rounding).
    reconstruction_error : float
        ``max_i |x_i - (R^T R x)_i|``.
    """

    before: np.ndarray
    after: np.ndarray
    restored: np.ndarray
    seed: int
    outliers: np.ndarray
    max_mean_before: float
    max_mean_after: float
    norm_before: float
    norm_after: float
    reconstruction_error: float


def compute_rotation_demo(x, seed: int = 0, outliers=()) -> RotationResult:
    """Rotate one vector by the Haar rotation ``random_orthogonal(d, seed)``.

    Parameters
    ----------
    x : (d,) float ndarray
    seed : int
        Seed of the rotation.
    outliers : sequence of int
        Channels to mark as outliers in the figure (they do not change the numbers).

    Returns
    -------
    RotationResult

    Examples
    --------
    >>> x, out = essay_vector()
    >>> r = compute_rotation_demo(x, seed=0, outliers=out)
    >>> abs(r.norm_after - r.norm_before) < 1e-9, r.max_mean_after < r.max_mean_before
    (True, True)
    """
    from ._validate import as_float_array
    from .rotation import random_orthogonal

    x = as_float_array(x, "x").astype(np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be one vector of shape (d,), got shape {x.shape}; "
                         f"pick one row, e.g. x[0]")
    q = random_orthogonal(x.shape[0], seed=seed)
    y = q @ x
    back = q.T @ y
    return RotationResult(
        before=x, after=y, restored=back, seed=int(seed),
        outliers=np.asarray(outliers, dtype=int),
        max_mean_before=max_mean_ratio(x), max_mean_after=max_mean_ratio(y),
        norm_before=float(np.linalg.norm(x)), norm_after=float(np.linalg.norm(y)),
        reconstruction_error=float(np.max(np.abs(back - x))),
    )


class RotateDemo:
    """State of the essay's Rotate button: each :meth:`press` draws a new rotation.

    Press ``k`` (counting from 0 after a reset) uses ``random_orthogonal(d, seed + k)``.

    Parameters
    ----------
    x : (d,) float ndarray, optional
        The vector to rotate; by default the essay's outlier vector (:func:`essay_vector`).
    outliers : sequence of int, optional
        Channels drawn in red (by default those of the essay vector).
    seed : int
        Seed of the first rotation.

    Examples
    --------
    >>> demo = RotateDemo()
    >>> demo.press().seed, demo.press().seed
    (0, 1)
    >>> demo.reset(); demo.result is None
    True
    """

    def __init__(self, x=None, outliers=None, seed: int = 0):
        if x is None:
            x, default_outliers = essay_vector()
            outliers = default_outliers if outliers is None else outliers
        self.x = np.asarray(x, dtype=np.float64)
        self.outliers = np.asarray(() if outliers is None else outliers, dtype=int)
        self.seed = int(seed)
        self.presses = 0
        self.result = None

    def press(self) -> RotationResult:
        """Draw the next rotation and rotate ``x`` with it."""
        self.result = compute_rotation_demo(self.x, self.seed + self.presses, self.outliers)
        self.presses += 1
        return self.result

    def reset(self) -> None:
        """Back to the unrotated vector; the next press uses ``seed`` again."""
        self.presses = 0
        self.result = None

    def summary(self) -> str:
        """The essay's three figures as one line of text."""
        before = max_mean_ratio(self.x)
        if self.result is None:
            return (f"Max/Mean before: {before:.1f}x | Max/Mean after: - (press Rotate) | "
                    f"norm {np.linalg.norm(self.x):.4g}")
        r = self.result
        return (f"rotation #{self.presses} (seed {r.seed}) | Max/Mean before: {before:.1f}x | "
                f"Max/Mean after: {r.max_mean_after:.1f}x | norm before {r.norm_before:.4g}, "
                f"after {r.norm_after:.4g}")


def rotate_app(x=None, outliers=None, seed: int = 0):
    """The essay's Rotate button (lesson 03): bar charts before and after a random rotation.

    Returns
    -------
    ipywidgets.VBox
        Buttons, a summary line and the figure; ``app.demo`` is the
        :class:`RotateDemo` behind it (``app.demo.press()`` is what a click does).
    """
    demo = RotateDemo(x, outliers, seed)
    rotate = widgets.Button(description="Rotate", button_style="primary")
    reset = widgets.Button(description="Reset")
    label = widgets.Label()
    out = widgets.Output()

    def redraw():
        label.value = demo.summary()
        with out:
            out.clear_output(wait=True)
            fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
            plots.draw_rotation(axes, demo.result, x=demo.x, outliers=demo.outliers)
            plt.show()

    def on_rotate(_):
        demo.press()
        redraw()

    def on_reset(_):
        demo.reset()
        redraw()

    rotate.on_click(on_rotate)
    reset.on_click(on_reset)
    redraw()
    app = widgets.VBox([widgets.HBox([rotate, reset]), label, out])
    app.demo = demo
    return app


@_dataclass
class RotationMSEResult:
    """Naive uniform quantization with and without a rotation first, per bit width.

    Attributes
    ----------
    bits : (B,) int ndarray
    mse_before, mse_after : (B,) ndarray
        Mean over vectors and coordinates of ``(x - x_hat)^2``: quantizing ``x``
        directly, and quantizing ``R x`` then rotating back with ``R^T``.
    range_before, range_after : float
        Mean over vectors of ``max - min`` of ``x`` and of ``R x``.
    predicted_ratio : float
        ``mean(range_x^2) / mean(range_Rx^2)``: the ratio ``mse_before / mse_after``
        that slot widths ``range / (2^b - 1)`` predict once the slots are fine
        (uniform rounding error, MSE = slot^2 / 12).
    seed : int
        Seed of the rotation (one rotation shared by all vectors).
    """

    bits: np.ndarray
    mse_before: np.ndarray
    mse_after: np.ndarray
    range_before: float
    range_after: float
    predicted_ratio: float
    seed: int

    @property
    def ratio(self) -> np.ndarray:
        """``mse_before / mse_after`` per bit width."""
        return self.mse_before / self.mse_after


def compute_rotation_mse(x, bits=range(1, 9), seed: int = 0) -> RotationMSEResult:
    """MSE of the min-max uniform quantizer on ``x`` and on ``R x`` (then rotated back).

    Parameters
    ----------
    x : (n, d) float ndarray
        Vectors, one per row.
    bits : iterable of int in 1..8
    seed : int
        Seed of the Haar rotation ``R = random_orthogonal(d, seed)``.

    Returns
    -------
    RotationMSEResult

    Notes
    -----
    ``x_hat = R^T Q(R x)``. Because ``R`` is orthogonal,
    ``||x - x_hat|| = ||R x - Q(R x)||``: the error is the one made on the rotated
    vector, whose range (hence slot width ``range / (2^b - 1)``) is far smaller.

    Examples
    --------
    >>> from turboquant_lab.data import make_kv_vectors
    >>> r = compute_rotation_mse(make_kv_vectors(100, 64), bits=[3])
    >>> bool(r.mse_after[0] < r.mse_before[0])
    True
    """
    from ._validate import as_float_array, check_bits
    from .rotation import random_orthogonal
    from .uniform import uniform_dequantize, uniform_quantize

    x = as_float_array(x, "x", min_ndim=2).astype(np.float64)
    bits = np.array([check_bits(b) for b in bits], dtype=int)
    q = random_orthogonal(x.shape[-1], seed=seed)
    y = x @ q.T
    before, after = [], []
    for b in bits:
        before.append(np.mean((x - uniform_dequantize(uniform_quantize(x, int(b)))) ** 2))
        after.append(np.mean((x - uniform_dequantize(uniform_quantize(y, int(b))) @ q) ** 2))
    rng_x = x.max(axis=-1) - x.min(axis=-1)
    rng_y = y.max(axis=-1) - y.min(axis=-1)
    return RotationMSEResult(bits=bits, mse_before=np.array(before), mse_after=np.array(after),
                             range_before=float(rng_x.mean()), range_after=float(rng_y.mean()),
                             predicted_ratio=float(np.mean(rng_x ** 2) / np.mean(rng_y ** 2)),
                             seed=int(seed))


@_dataclass
class RotationTiming:
    """Wall-clock cost of a dense rotation ``x @ Q.T`` (seconds per vector).

    Attributes
    ----------
    dims : (k,) int ndarray
    single : (k,) ndarray
        Seconds to rotate one vector (a matrix-vector product).
    batch : (k,) ndarray
        Seconds per vector when ``batch_size`` vectors are rotated at once.
    batch_size : int
    """

    dims: np.ndarray
    single: np.ndarray
    batch: np.ndarray
    batch_size: int


def time_dense_rotation(dims=(128, 256, 512, 1024, 2048, 4096), batch_size: int = 64,
                        repeats: int = 7, seed: int = 0, threads=1) -> RotationTiming:
    """Time ``x @ Q.T`` for one vector and for a batch, for each dimension.

    ``Q`` is a ``(d, d)`` float32 matrix of Gaussian entries, not a Haar rotation:
    the cost of a dense product does not depend on the numbers in the matrix, and
    drawing a Haar rotation by QR costs O(d^3), seconds at d = 4096. Each figure is
    the best of ``repeats`` runs (the least disturbed by other work on the machine).

    Parameters
    ----------
    threads : int or None
        BLAS threads while timing (needs ``threadpoolctl``; ignored without it).
        1, the default, measures the cost on one core, which stays steady on a
        busy machine, where a multi-threaded product can stall for milliseconds
        waiting for a thread; ``None`` keeps the BLAS as configured.

    Returns
    -------
    RotationTiming
    """
    import contextlib
    import time

    from ._validate import make_rng

    limit = contextlib.nullcontext()
    if threads is not None:
        try:
            from threadpoolctl import threadpool_limits
            limit = threadpool_limits(limits=int(threads), user_api="blas")
        except ImportError:
            pass
    with limit:
        return _time_dense_rotation(dims, batch_size, repeats, make_rng(seed), time.perf_counter)


def _time_dense_rotation(dims, batch_size, repeats, rng, clock) -> RotationTiming:
    dims = np.array([int(d) for d in dims], dtype=int)
    single, batch = [], []
    for d in dims:
        q = rng.standard_normal((d, d), dtype=np.float32)
        xs = rng.standard_normal((batch_size, d), dtype=np.float32)
        xs @ q.T  # warm-up: the first product starts the BLAS threads
        for x, store, n in ((xs[0], single, 1), (xs, batch, batch_size)):
            best = np.inf
            for _ in range(repeats):
                start = clock()
                x @ q.T
                best = min(best, clock() - start)
            store.append(best / n)
    return RotationTiming(dims=dims, single=np.array(single), batch=np.array(batch),
                          batch_size=int(batch_size))


def sample_rotated_coordinate(d: int, n: int = 10_000, x=None, seed=0):
    """First coordinate of ``Q x`` for ``n`` independent Haar rotations ``Q``, cheaply.

    Parameters
    ----------
    d : int >= 2
    n : int
        Number of rotations.
    x : (d,) float ndarray, optional
        The vector rotated (normalised to unit length here); by default the
        essay-like outlier vector ``make_kv_vectors(1, d, n_outliers=min(5, d // 2), seed=ESSAY_SEED)``.
    seed : int or numpy.random.Generator

    Returns
    -------
    u1 : (n,) float64 ndarray

    Notes
    -----
    ``(Q x)_1 = q_1 . x`` with ``q_1`` the first row of ``Q``; the rows of a Haar
    ``Q`` are uniform unit vectors, so it suffices to draw ``n`` uniform unit
    vectors ``g / ||g||`` (``g`` standard Gaussian) and dot them with ``x``:
    ``O(n d)`` work instead of ``n`` QR factorisations of ``O(d^3)`` each.
    """
    from ._validate import check_dim, make_rng

    d, n = check_dim(d, "d"), check_dim(n, "n")
    if d < 2:
        raise ValueError(f"d must be at least 2, got {d}")
    if x is None:
        from .data import make_kv_vectors

        x = make_kv_vectors(1, d, n_outliers=min(5, d // 2), seed=ESSAY_SEED)[0]
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (d,):
        raise ValueError(f"x must have shape ({d},), got {x.shape}")
    x = x / np.linalg.norm(x)
    rng = make_rng(seed)
    out = np.empty(n)
    chunk = max(1, 2_000_000 // d)
    for start in range(0, n, chunk):
        g = rng.standard_normal((min(chunk, n - start), d))
        out[start:start + len(g)] = (g @ x) / np.linalg.norm(g, axis=1)
    return out


def gaussian_gap(d: int, n_grid: int = 40_001):
    """How far N(0, 1/d) is from the exact law of a coordinate of a uniform unit vector.

    Parameters
    ----------
    d : int >= 3
    n_grid : int
        Points of the integration grid (on ``[0, min(sqrt d, 12)]`` in scaled units).

    Returns
    -------
    tv : float
        Total variation distance ``(1/2) int |f_d - g_d|``.
    max_gap : float
        ``max |f - phi|`` in scaled units ``t = sqrt(d) u_1`` (variance 1 for both
        laws, so the figure is comparable across d).

    Notes
    -----
    Both laws are symmetric, and the Gaussian puts mass ``2 Phi(-sqrt d)`` outside
    the support ``[-1, 1]`` of the exact law, so
    ``tv = int_0^sqrt(d) |f - phi| dt + Phi(-sqrt d)`` (trapezoid rule). TV is
    invariant under the scaling, so it is the same in units of ``u_1``.
    """
    from scipy import stats

    from .codebooks import coordinate_pdf

    d = int(d)
    if d < 3:
        raise ValueError(f"d must be at least 3 (the density is unbounded at d = 2), got {d}")
    t = np.linspace(0.0, min(np.sqrt(d), 12.0), int(n_grid))
    diff = np.abs(coordinate_pdf(t, d) - stats.norm.pdf(t))
    tv = float(np.sum((diff[1:] + diff[:-1]) / 2 * np.diff(t)) + stats.norm.sf(np.sqrt(d)))
    return tv, float(diff.max())


@_dataclass
class CoordinateHistogram:
    """One coordinate of a randomly rotated unit vector, simulated and exact.

    Attributes
    ----------
    d, n : int
        Dimension and number of simulated rotations.
    samples : (n,) ndarray
        ``(Q x)_1`` for ``n`` Haar rotations ``Q`` (:func:`sample_rotated_coordinate`).
    sigma_theory, sigma_empirical : float
        ``1 / sqrt(d)`` and the sample standard deviation.
    kurtosis_exact, kurtosis_empirical : float
        ``3 d / (d + 2)`` (from the Beta moments) and the sample kurtosis (3 for a Gaussian).
    grid : (m,) ndarray
        Points in ``[-1, 1]`` where the densities are evaluated.
    exact_pdf, gaussian_pdf : (m,) ndarray
        The scaled Beta density ``f_d`` and the N(0, 1/d) density on ``grid``.
    tv, max_gap : float
        :func:`gaussian_gap` ``(d)``.
    """

    d: int
    n: int
    samples: np.ndarray
    sigma_theory: float
    sigma_empirical: float
    kurtosis_exact: float
    kurtosis_empirical: float
    grid: np.ndarray
    exact_pdf: np.ndarray
    gaussian_pdf: np.ndarray
    tv: float
    max_gap: float

    @property
    def sigma_relative_error(self) -> float:
        """``sigma_empirical / sigma_theory - 1``."""
        return self.sigma_empirical / self.sigma_theory - 1


def exact_kurtosis(d: int) -> float:
    """Kurtosis of a coordinate of a uniform unit vector, from ``Beta((d-1)/2, (d-1)/2)``.

    Equals ``3 d / (d + 2)`` (a Gaussian has 3); scaling and shifting do not change it.
    """
    from scipy import stats

    a = (int(d) - 1) / 2
    return float(stats.beta(a, a).stats(moments="k")) + 3.0


def compute_coordinate_histogram(d: int, n: int = 10_000, seed=0, x=None) -> CoordinateHistogram:
    """Simulate ``n`` rotations of a unit vector in R^d and compare a coordinate with theory.

    Examples
    --------
    >>> h = compute_coordinate_histogram(128)
    >>> round(h.sigma_theory, 4)
    0.0884
    """
    from scipy import stats

    from .codebooks import unit_coordinate_pdf

    u = sample_rotated_coordinate(d, n, x=x, seed=seed)
    sigma = 1 / np.sqrt(d)
    half = min(1.0, 5 * sigma)
    grid = np.linspace(-half, half, 801)
    tv, gap = gaussian_gap(d) if d >= 3 else (np.nan, np.nan)
    return CoordinateHistogram(
        d=int(d), n=int(n), samples=u, sigma_theory=float(sigma),
        sigma_empirical=float(u.std()),
        kurtosis_exact=exact_kurtosis(d),
        kurtosis_empirical=float(stats.kurtosis(u, fisher=False)),
        grid=grid, exact_pdf=unit_coordinate_pdf(grid, d),
        gaussian_pdf=stats.norm.pdf(grid, scale=sigma), tv=tv, max_gap=gap)


#: The values of the d slider of lesson 04 (3: Archimedes' uniform law; then powers of two).
DIST_DIMS = (3, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def distribution_app(n: int = 10_000, seed: int = 0, d: int = 128):
    """Lesson 04: histogram of a rotated coordinate against N(0, 1/d) and the exact law; d slider.

    Returns
    -------
    ipywidgets.VBox
        The slider (``app.slider``), and the figure with the figures printed under it.
    """
    dims = np.array(DIST_DIMS)
    gaps = np.array([gaussian_gap(k)[0] for k in dims])
    slider = widgets.SelectionSlider(options=list(DIST_DIMS), value=int(d), description="d",
                                     continuous_update=False)

    def show(d):
        h = compute_coordinate_histogram(d, n=n, seed=seed)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [3, 2]})
        plots.draw_coordinate_histogram(axes[0], h)
        plots.draw_gaussian_gap(axes[1], dims, gaps, current=(h.d, h.tv))
        plt.tight_layout()
        plt.show()
        print(f"sigma: theory 1/sqrt(d) = {h.sigma_theory:.4f}, simulated {h.sigma_empirical:.4f} "
              f"({100 * h.sigma_relative_error:+.1f}%) | kurtosis: exact {h.kurtosis_exact:.3f}, "
              f"simulated {h.kurtosis_empirical:.3f} (Gaussian 3) | TV(exact, Gaussian) = {h.tv:.2g}")

    out = widgets.interactive_output(show, {"d": slider})
    app = widgets.VBox([slider, out])
    app.slider = slider
    return app
# ---- end lessons 03-04 ------------------------------------------------------

# ---- lessons 05-06 ----------------------------------------------------------
# Lesson 05: the butterfly stepper (8 elements, 3 stages) and dense vs fast timings.
# Lesson 06: what random signs do (and do not do) to a Walsh-Hadamard transform.


def butterfly_pairs(d, stage):
    """The ``(i, j)`` pairs that butterfly stage ``stage`` (0-based) combines.

    Parameters
    ----------
    d : int
        Length of the vector, a power of two.
    stage : int
        0 .. log2(d) - 1. Stage ``s`` pairs coordinates ``2**s`` apart.

    Returns
    -------
    pairs : list of (int, int)
        ``d // 2`` pairs with ``j - i == 2**stage``; every coordinate appears once.
        Coordinate ``i`` receives ``a + b``, coordinate ``j`` receives ``a - b``.

    Examples
    --------
    >>> butterfly_pairs(8, 1)
    [(0, 2), (1, 3), (4, 6), (5, 7)]
    """
    from ._validate import check_power_of_two

    d = check_power_of_two(d, "d")
    n_stages = d.bit_length() - 1
    if not 0 <= int(stage) < n_stages:
        raise ValueError(f"stage must be between 0 and log2(d) - 1 = {n_stages - 1}, got {stage}")
    h = 1 << int(stage)
    return [(i, i + h) for start in range(0, d, 2 * h) for i in range(start, start + h)]


from dataclasses import dataclass as _dataclass  # noqa: E402  (kept inside this lesson section)


@_dataclass(frozen=True)
class ButterflyState:
    """What the butterfly stepper shows after ``stage`` butterfly stages.

    Attributes
    ----------
    stage : int
        Butterfly stages done, 0 (the input) .. ``n_stages``.
    n_stages : int
        ``log2(d)``.
    history : list of (d,) float64 ndarray
        The values after 0, 1, ..., ``stage`` stages (unnormalized: no ``1/sqrt(d)``).
    pairs : list of (int, int)
        The pairs the last stage combined (``[]`` at stage 0).
    stride : int or None
        ``j - i`` of those pairs, ``2**(stage - 1)`` (None at stage 0).
    """

    stage: int
    n_stages: int
    history: list
    pairs: list
    stride: int | None

    @property
    def values(self) -> np.ndarray:
        """The current values, shape ``(d,)``."""
        return self.history[-1]

    @property
    def nonzero(self) -> int:
        """How many coordinates are not zero now."""
        return int(np.count_nonzero(self.values))

    @property
    def d(self) -> int:
        return self.values.shape[-1]


def compute_butterfly(x, stage):
    """Run the first ``stage`` butterfly stages on a vector, pair by pair.

    A plain loop over the pairs of :func:`butterfly_pairs`, written to be read
    (the library's :func:`~turboquant_lab.hadamard.fwht_stages` is the oracle
    the tests compare it with).

    Parameters
    ----------
    x : (d,) array_like
        The input, ``d`` a power of two.
    stage : int
        Stages to run, 0 .. log2(d).

    Returns
    -------
    ButterflyState

    Notes
    -----
    Stage ``s`` (0-based) replaces each pair ``(a, b) = (x_i, x_{i + 2^s})``
    by ``(a + b, a - b)``. After all ``log2 d`` stages the result is
    ``hadamard(d) @ x`` (the unnormalized transform). Starting from
    ``e_0 = [1, 0, ..., 0]``, stage ``s`` doubles the nonzero coordinates:
    ``2**stage`` of them are nonzero after ``stage`` stages.

    Examples
    --------
    >>> compute_butterfly([1.0, 0, 0, 0], 1).values
    array([1., 1., 0., 0.])
    """
    from ._validate import as_float_array, check_power_of_two

    x = np.array(as_float_array(x, "x"), dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be one vector of shape (d,), got shape {x.shape}")
    d = check_power_of_two(x.shape[0], "len(x)")
    n_stages = d.bit_length() - 1
    if isinstance(stage, bool) or not isinstance(stage, (int, np.integer)) or not 0 <= stage <= n_stages:
        raise ValueError(f"stage must be an integer between 0 and log2(d) = {n_stages}, got {stage!r}")
    history, pairs = [x], []
    for s in range(int(stage)):
        prev, new = history[-1], history[-1].copy()
        pairs = butterfly_pairs(d, s)
        for i, j in pairs:
            new[i], new[j] = prev[i] + prev[j], prev[i] - prev[j]
        history.append(new)
    stride = (1 << (int(stage) - 1)) if stage else None
    return ButterflyState(int(stage), n_stages, history, pairs, stride)


def butterfly_caption(state) -> str:
    """One line that says what the stepper shows at ``state``."""
    if state.stage == 0:
        where = ("all information sits at coordinate 0" if state.nonzero == 1
                 and state.values[0] != 0 else f"{state.nonzero} of {state.d} coordinates are nonzero")
        return f"Stage 0 of {state.n_stages}. Initial: {where}."
    return (f"Stage {state.stage} of {state.n_stages}: pairs {state.stride} apart combined, "
            f"(a, b) -> (a + b, a - b); {state.nonzero} of {state.d} coordinates nonzero.")


class ButterflyStepper:
    """State of the butterfly stepper: which stage is shown, moved by Next and Back.

    Parameters
    ----------
    x : (d,) array_like, optional
        The input; default ``e_0 = [1, 0, ..., 0]`` of length ``d``.
    d : int
        Length of the default input (8, as in the essay).

    Examples
    --------
    >>> s = ButterflyStepper()
    >>> s.next().nonzero, s.next().nonzero, s.back().nonzero
    (2, 4, 2)
    """

    def __init__(self, x=None, d=8):
        if x is None:
            x = np.zeros(d)
            x[0] = 1.0
        self._state = compute_butterfly(x, 0)
        self.x = self._state.values

    @property
    def stage(self) -> int:
        return self._state.stage

    @property
    def n_stages(self) -> int:
        return self._state.n_stages

    @property
    def state(self) -> ButterflyState:
        return self._state

    @property
    def values(self) -> np.ndarray:
        """The values after :attr:`stage` stages."""
        return self._state.values

    def _go(self, stage):
        self._state = compute_butterfly(self.x, min(max(stage, 0), self.n_stages))
        return self._state

    def next(self) -> ButterflyState:
        """One stage forward (stays at the last stage)."""
        return self._go(self.stage + 1)

    def back(self) -> ButterflyState:
        """One stage back (stays at stage 0)."""
        return self._go(self.stage - 1)

    def reset(self, x=None) -> ButterflyState:
        """Back to stage 0, optionally with a new input."""
        if x is not None:
            self.x = compute_butterfly(x, 0).values
        return self._go(0)


#: Inputs of the butterfly app, each a function of d.
BUTTERFLY_INPUTS = {
    "e_0 = [1, 0, ..., 0]": lambda d: np.eye(d)[0],
    "e_5": lambda d: np.eye(d)[5 % d],
    "[0, 1, ..., d-1]": lambda d: np.arange(d, dtype=np.float64),
    "[1, 1, ..., 1]": lambda d: np.ones(d),
}


def _stepper_view(stepper, caption_of, draw, figsize):
    """Back / Next buttons, a caption and a figure for a stepper with ``back()``, ``next()``, ``state``.

    Returns ``(back, next, caption, out, show)``; ``show(state)`` redraws, and
    has already drawn the stepper's current state.
    """
    back = widgets.Button(description="Back", icon="step-backward")
    nxt = widgets.Button(description="Next", icon="step-forward")
    caption = widgets.Label()
    out = widgets.Output()

    def show(state):
        caption.value = caption_of(state)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=figsize)
            draw(ax, state)
            plt.show()

    back.on_click(lambda _: show(stepper.back()))
    nxt.on_click(lambda _: show(stepper.next()))
    show(stepper.state)
    return back, nxt, caption, out, show


def butterfly_app(d=8):
    """The essay's butterfly stepper: Back / Next buttons and an input choice.

    Returns the widget; its ``stepper`` attribute is the :class:`ButterflyStepper`.
    """
    stepper = ButterflyStepper(d=d)
    choice = widgets.Dropdown(options=list(BUTTERFLY_INPUTS), description="input")
    back, nxt, caption, out, show = _stepper_view(stepper, butterfly_caption,
                                                  plots.draw_butterfly, (8, 3.6))

    def on_choice(change):
        show(stepper.reset(BUTTERFLY_INPUTS[change["new"]](d)))

    choice.observe(on_choice, names="value")
    app = widgets.VBox([widgets.HBox([choice, back, nxt]), caption, out])
    app.stepper = stepper
    return app


def time_dense_vs_fwht(dims, batch=None, repeat=5, seed=0, threads=1):
    """Seconds per vector of a dense Hadamard product and of :func:`fwht`, for each ``d``.

    Parameters
    ----------
    dims : sequence of int
        Powers of two.
    batch : int or None
        Vectors per call (float32, shape ``(batch, d)``), so that each call
        does enough work to be timed; None: ``max(64, 2**16 // d)`` (a 256 KiB
        batch, so that small sizes are not timing the call overhead).
    repeat : int
        The best of ``repeat`` calls is kept.
    seed : int
    threads : int or None
        BLAS threads (and so ``fwht`` worker threads) during the timing; 1 by
        default, so that the figure compares the two algorithms on one core
        rather than thread scheduling on a busy machine (a multi-threaded
        BLAS on loaded cores can be 100x slower on small products). None
        leaves the thread count alone. Needs ``threadpoolctl`` (ignored
        without it).

    Returns
    -------
    dict with ``dims``, ``dense``, ``fwht`` (seconds per vector, float arrays)
    and ``max_abs_diff`` (largest ``|dense - fwht|`` over all sizes: both
    compute the same thing). Wall-clock figures: print them only in a plot or
    on a line marked ``(timed)``.
    """
    import contextlib
    import time

    from .hadamard import fwht, hadamard

    limit = contextlib.nullcontext()
    if threads is not None:
        try:
            from threadpoolctl import threadpool_limits
            limit = threadpool_limits(limits=int(threads), user_api="blas")
        except ImportError:  # timings still work, with the default thread count
            pass
    with limit:
        return _time_dense_vs_fwht(dims, batch, repeat, seed, fwht, hadamard, time.perf_counter)


def _time_dense_vs_fwht(dims, batch, repeat, seed, fwht, hadamard, clock):
    rng = np.random.default_rng(seed)
    dense_s, fast_s, diff = [], [], 0.0
    for d in dims:
        n = batch or max(64, (1 << 16) // int(d))
        x = rng.standard_normal((n, d)).astype(np.float32)
        h = hadamard(d, dtype=np.float32)
        h *= np.float32(1 / np.sqrt(d))
        results = {}
        for name, f in (("dense", lambda: x @ h.T), ("fwht", lambda: fwht(x))):
            best = np.inf
            for _ in range(repeat):
                t0 = clock()
                results[name] = f()
                best = min(best, clock() - t0)
            (dense_s if name == "dense" else fast_s).append(best / n)
        diff = max(diff, float(np.max(np.abs(results["dense"] - results["fwht"]))))
    return {"dims": np.asarray(dims), "dense": np.asarray(dense_s), "fwht": np.asarray(fast_s),
            "max_abs_diff": diff}


# Lesson 06 -----------------------------------------------------------------------

#: Inputs of lesson 06 (all scaled to unit length).
SIGN_INPUTS = ("constant", "Hadamard row", "e_1", "KV vector", "random")
#: Transforms of lesson 06: fixed H, one sign flip, two sign flips, a Haar-random rotation.
SIGN_TRANSFORMS = ("H", "H D", "D2 H D1", "dense Haar")
#: Which row of H the "Hadamard row" input is.
HADAMARD_ROW = 5


def sign_demo_input(name, d=64, seed=0):
    """One of the inputs of lesson 06, as a unit vector of shape ``(d,)`` (float64).

    ``"constant"`` is ``[1, ..., 1] / sqrt(d)``; ``"Hadamard row"`` is row
    :data:`HADAMARD_ROW` of ``hadamard(d) / sqrt(d)``; ``"e_1"`` is
    ``[0, 1, 0, ..., 0]``; ``"KV vector"`` is ``make_kv_vectors(1, d, seed=seed)``
    (5 outlier channels, 20x); ``"random"`` is a Gaussian vector. The first
    three are the bad inputs of a fixed H: ``H x / sqrt(d)`` is one spike for
    the first two.
    """
    from ._validate import check_power_of_two
    from .data import make_kv_vectors
    from .hadamard import hadamard

    d = check_power_of_two(d, "d")
    if name == "constant":
        x = np.ones(d)
    elif name == "Hadamard row":
        x = hadamard(d)[HADAMARD_ROW % d].astype(np.float64)
    elif name == "e_1":
        x = np.eye(d)[1 % d]
    elif name == "KV vector":
        x = make_kv_vectors(1, d, seed=seed)[0].astype(np.float64)
    elif name == "random":  # its own stream: not the stream a transform with the same seed uses
        x = np.random.default_rng([seed, 606]).standard_normal(d)
    else:
        raise ValueError(f"name must be one of {SIGN_INPUTS}, got {name!r}")
    return x / np.linalg.norm(x)


def sign_transform(x, transform, seed=0, n_draws=None):
    """Apply one of :data:`SIGN_TRANSFORMS` to ``x`` for one or many random draws.

    Parameters
    ----------
    x : (..., d) array_like
        ``d`` a power of two.
    transform : {"H", "H D", "D2 H D1", "dense Haar"}
        ``fwht(x)``; ``fwht(s1 * x)``; ``s2 * fwht(s1 * x)``; ``Q @ x`` with a
        Haar-random orthogonal ``Q``. ``fwht`` is the orthonormal transform.
    seed : int or numpy.random.Generator
        Draw ``k`` takes ``s1`` then ``s2`` from one generator, so "H D" and
        "D2 H D1" with the same seed share ``D1``, and the first "D2 H D1"
        draw equals ``RandomizedHadamard(d, seed).forward(x)``.
    n_draws : int or None
        None: one draw, shape ``(..., d)``; else ``(n_draws, ..., d)``.

    Returns
    -------
    y : float64 ndarray
    """
    from ._validate import as_float_array, check_dim, check_power_of_two, make_rng
    from .hadamard import fwht
    from .rotation import random_orthogonal

    x = np.asarray(as_float_array(x, "x"), dtype=np.float64)
    d = check_power_of_two(x.shape[-1], "d")
    if transform not in SIGN_TRANSFORMS:
        raise ValueError(f"transform must be one of {SIGN_TRANSFORMS}, got {transform!r}")
    n = 1 if n_draws is None else check_dim(n_draws, "n_draws")
    rng = make_rng(seed)
    if transform == "H":
        y = np.broadcast_to(fwht(x), (n,) + x.shape).copy()
    elif transform == "dense Haar":
        y = np.stack([x @ random_orthogonal(d, rng).T for _ in range(n)])
    else:
        signs = _sign_draws(rng, n, 2, d)                        # (n, 2, d): s1, s2 of each draw
        s1 = signs[:, 0].reshape((n,) + (1,) * (x.ndim - 1) + (d,))
        s2 = signs[:, 1].reshape(s1.shape)
        y = fwht(s1 * x)
        if transform == "D2 H D1":
            y = s2 * y
    return y[0] if n_draws is None else y


def _sign_draws(rng, n, k, d):
    """``(n, k, d)`` float64 signs: draw by draw, ``k`` vectors of ``random_signs(d, rng)``.

    One call to ``rng.integers`` gives the same numbers as ``n * k`` calls of
    :func:`~turboquant_lab.rotation.random_signs` for even ``d`` (NumPy
    draws two 32-bit values per 64-bit word and keeps no leftover), ``n * k``
    times faster; the tests check it against ``RandomizedHadamard``.
    """
    return (1 - 2 * rng.integers(0, 2, size=(n, k, d))).astype(np.float64)


def hd_blocks(x, n_blocks, seed=0, n_draws=None):
    """``(H D_k) ... (H D_1) x``: ``n_blocks`` sign-flip + WHT blocks in a row, fresh signs each.

    Same shapes and seeding as :func:`sign_transform` (block 1 uses the same
    ``D1`` as ``sign_transform(x, "H D", seed)``).
    """
    from ._validate import as_float_array, check_dim, check_power_of_two, make_rng
    from .hadamard import fwht

    x = np.asarray(as_float_array(x, "x"), dtype=np.float64)
    d = check_power_of_two(x.shape[-1], "d")
    n_blocks = check_dim(n_blocks, "n_blocks")
    n = 1 if n_draws is None else check_dim(n_draws, "n_draws")
    rng = make_rng(seed)
    signs = _sign_draws(rng, n, max(n_blocks, 2), d)            # (n, blocks, d)
    y = np.broadcast_to(x, (n,) + x.shape)
    shape = (n,) + (1,) * (x.ndim - 1) + (d,)
    for b in range(n_blocks):
        y = fwht(signs[:, b].reshape(shape) * y)
    return y[0] if n_draws is None else y


def quantization_error(y, bits):
    """``||y - y_hat||^2`` of unit vectors ``y`` quantized TurboQuant-style, per vector.

    Each coordinate is scaled to ``t = sqrt(d) y``, quantized with
    ``lloyd_max_codebook(bits, d)`` (designed for the exact coordinate law of a
    randomly rotated unit vector at dimension ``d``) and scaled back. For a
    truly random rotation of a unit vector the expected value is ``codebook.mse``.

    Parameters
    ----------
    y : (..., d) float array
    bits : int, 1..8

    Returns
    -------
    err : (...) float64 ndarray
    """
    from .codebooks import lloyd_max_codebook

    y = np.asarray(y, dtype=np.float64)
    d = y.shape[-1]
    cb = lloyd_max_codebook(bits, d)
    t = np.sqrt(d) * y
    t_hat = cb.dequantize(cb.quantize(t))
    return np.sum((t - t_hat) ** 2, axis=-1) / d


@_dataclass(frozen=True)
class SignDemo:
    """What the sign-flip app shows for one (input, transform, bits, seed)."""

    input_name: str
    transform: str
    bits: int
    seed: int
    d: int
    x: np.ndarray           # (d,) unit input
    y: np.ndarray           # (d,) output of this draw
    max_over_mean: float    # max |y_i| / mean |y_i| of this draw
    mse: float              # ||y - y_hat||^2 of this draw
    mean_mse: float         # average over n_draws draws (seeds drawn from `seed`)
    codebook_mse: float     # what the codebook promises for a random rotation
    levels: np.ndarray      # the codebook's levels in unscaled units (centroids / sqrt(d))


def compute_sign_demo(input_name="constant", transform="H D", bits=2, seed=0, d=64, n_draws=200):
    """Transform one lesson-06 input, quantize it, and measure spread and error.

    Parameters
    ----------
    input_name : one of :data:`SIGN_INPUTS`
    transform : one of :data:`SIGN_TRANSFORMS`
    bits : int, 1..8
    seed : int
        The draw shown (``y``) is the first of ``n_draws`` draws from this seed.
    d : int, power of two
    n_draws : int
        Draws averaged in ``mean_mse``.

    Returns
    -------
    SignDemo
    """
    from .codebooks import lloyd_max_codebook

    x = sign_demo_input(input_name, d)
    ys = sign_transform(x, transform, seed=seed, n_draws=n_draws)
    errors = quantization_error(ys, bits)
    cb = lloyd_max_codebook(bits, d)
    y = ys[0]
    a = np.abs(y)
    return SignDemo(input_name, transform, int(bits), int(seed), d, x, y,
                    float(a.max() / a.mean()), float(errors[0]), float(errors.mean()),
                    float(cb.mse), cb.centroids / np.sqrt(d))


def sign_flip_app(d=64):
    """Input x transform x bits: the output bars, their max/mean and the quantization error.

    Returns the widget; its ``shown`` attribute is a dict whose ``"result"``
    is the :class:`SignDemo` on display (what the tests read).
    """
    name = widgets.Dropdown(options=list(SIGN_INPUTS), value="constant", description="input")
    transform = widgets.ToggleButtons(options=list(SIGN_TRANSFORMS), value="H", description="transform")
    bits = widgets.IntSlider(value=2, min=1, max=4, description="bits")
    seed = widgets.IntSlider(value=0, min=0, max=20, description="sign draw", continuous_update=False)
    shown = {}

    def show(input_name, transform, bits, seed):
        result = shown["result"] = compute_sign_demo(input_name, transform, bits, seed, d=d)
        fig, ax = plt.subplots(figsize=(8, 3))
        plots.draw_sign_bars(ax, result)
        plt.show()
        print(f"max/mean {result.max_over_mean:.1f};  error of this draw {result.mse:.4f}, "
              f"mean over 200 draws {result.mean_mse:.4f}, codebook promises {result.codebook_mse:.4f}")

    out = widgets.interactive_output(show, {"input_name": name, "transform": transform,
                                            "bits": bits, "seed": seed})
    app = widgets.VBox([widgets.HBox([name, bits, seed]), transform, out])
    app.shown = shown
    return app


#: The collision demo's three ways of rotating two vectors.
COLLISION_MODES = ("same WHT", "shared signs", "per-vector signs")


def pad_to_power_of_two(x):
    """Append zeros to the last axis up to the next power of two (no copy if already one)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    d = 1 << max(n - 1, 0).bit_length()
    if d == n:
        return x
    return np.concatenate([x, np.zeros(x.shape[:-1] + (d - n,))], axis=-1)


def compute_collision(a, b, bits=2, seed=0, n_draws=1000):
    """The essay's collision demo, measured: codes of two similar vectors under three rotations.

    Each vector is padded to a power of two ``d``, scaled to unit length (its
    norm is stored apart, as TurboQuant does), rotated, and quantized with
    ``lloyd_max_codebook(bits, d)``. Modes: ``"same WHT"`` (``H`` for both),
    ``"shared signs"`` (one ``D2 H D1`` for both, as a real system uses),
    ``"per-vector signs"`` (each vector its own ``D2 H D1``: the essay's
    "scrambled by different random signs").

    Returns
    -------
    dict with ``d``, ``a``, ``b`` (padded), ``distance`` (``||a - b||``),
    and per mode: ``rotated[mode] = (ya, yb)`` and ``codes[mode] = (ca, cb)``
    for the draw ``seed``, ``rotated_distance[mode]`` (``||R a - R b||`` of that
    draw, unit vectors times their norms), ``agreement[mode]``: the
    fraction of coordinates whose codes agree, and ``dot_estimate[mode]``: the
    dot product of the two *dequantized rotated* vectors (times their norms),
    what a search or attention score computes from the codes, both averaged
    over ``n_draws`` draws; ``dot`` is the true ``a . b``.
    """
    from ._validate import make_rng
    from .codebooks import lloyd_max_codebook

    a, b = pad_to_power_of_two(a), pad_to_power_of_two(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be vectors of the same length, got {a.shape} and {b.shape}")
    d = a.shape[0]
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cb = lloyd_max_codebook(bits, d)
    rng = make_rng(seed)
    out = {"d": d, "a": a, "b": b, "bits": int(bits), "distance": float(np.linalg.norm(a - b)),
           "dot": float(a @ b), "rotated": {}, "codes": {}, "rotated_distance": {},
           "agreement": {}, "dot_estimate": {}}
    units = np.stack([a / na, b / nb])                            # (2, d)
    for mode in COLLISION_MODES:
        kind = "H" if mode == "same WHT" else "D2 H D1"
        if mode == "per-vector signs":
            ya = sign_transform(units[0], kind, seed=rng, n_draws=n_draws)
            yb = sign_transform(units[1], kind, seed=rng, n_draws=n_draws)
        else:                                                     # one rotation for both
            ya, yb = np.moveaxis(sign_transform(units, kind, seed=rng, n_draws=n_draws), 1, 0)
        ca, cb_ = cb.quantize(np.sqrt(d) * ya), cb.quantize(np.sqrt(d) * yb)
        out["rotated"][mode] = (ya[0], yb[0])
        out["codes"][mode] = (ca[0], cb_[0])
        out["rotated_distance"][mode] = float(np.linalg.norm(na * ya[0] - nb * yb[0]))
        out["agreement"][mode] = float(np.mean(ca == cb_))
        dots = np.sum(cb.dequantize(ca) * cb.dequantize(cb_), axis=-1) / d
        out["dot_estimate"][mode] = float(na * nb * np.mean(dots))
    return out
# ---- end lessons 05-06 ------------------------------------------------------

# ---- lessons 07-08 ----------------------------------------------------------
import functools as _functools  # noqa: E402  (lessons 07-08)
from dataclasses import dataclass as _dataclass  # noqa: E402

#: Laws offered by the Lloyd-Max app: 0 stands for the Gaussian limit (d = None).
_LLOYD_LAWS = [("N(0, 1) (large d)", 0), ("exact law, d = 8", 8), ("exact law, d = 16", 16),
               ("exact law, d = 128", 128)]
_LLOYD_STARTS = [("equal slots over [-3, 3]", "span"), ("best uniform slots", "uniform")]


@_dataclass(frozen=True, eq=False)
class LloydMaxState:
    """What the Lloyd-Max stepper shows at one iteration (lesson 07).

    Attributes
    ----------
    bits, d, init, n_iter : the settings (``d`` None for the N(0, 1) law).
    iteration : int
        0 is the starting codebook, ``i`` the state after ``i`` Lloyd updates.
    codebook : Codebook
        ``lloyd_max_history(bits, d, n_iter, init)[iteration]``.
    mse_history : (iteration + 1,) ndarray
        MSE of the states 0 .. iteration (never increasing).
    start_mse, uniform_mse, optimal_mse : float
        MSE of the start, of the best uniform codebook and of the converged
        Lloyd-Max codebook (:func:`~turboquant_lab.codebooks.lloyd_max_codebook`).
    optimal_centroids : (2**bits,) ndarray
        The converged Lloyd-Max centroids.
    """

    bits: int
    d: int | None
    init: str
    n_iter: int
    iteration: int
    codebook: object
    mse_history: np.ndarray
    start_mse: float
    uniform_mse: float
    optimal_mse: float
    optimal_centroids: np.ndarray

    @property
    def centroids(self) -> np.ndarray:
        return self.codebook.centroids

    @property
    def boundaries(self) -> np.ndarray:
        return self.codebook.boundaries

    @property
    def mse(self) -> float:
        return self.codebook.mse

    @property
    def levels(self) -> int:
        return 1 << self.bits


@_functools.lru_cache(maxsize=64)
def _lloyd_history(bits: int, d, init: str, n_iter: int) -> tuple:
    from .codebooks import lloyd_max_history

    return tuple(lloyd_max_history(bits, d, n_iter=n_iter, init=init))


def _l07_check_int(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer between {lo} and {hi}, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")
    return int(value)


def compute_lloyd_max_state(bits: int = 3, iteration: int = 0, d=None, init: str = "span",
                            n_iter: int = 60) -> LloydMaxState:
    """The Lloyd-Max iteration at one step, with its MSE history (lesson 07's stepper).

    Parameters
    ----------
    bits : int
        1 to 8 (the app offers 1 to 4).
    iteration : int
        0 (the start) to ``n_iter``.
    d : int >= 2 or None
        Exact coordinate law at dimension ``d``, or N(0, 1) when None.
    init : {"span", "uniform"}
        Start from equal slots over ``[-3, 3]`` or from the best uniform codebook
        (see :func:`~turboquant_lab.codebooks.lloyd_max_history`).
    n_iter : int
        Number of iterations the stepper can go through.

    Returns
    -------
    LloydMaxState

    Raises
    ------
    TypeError, ValueError
        Bad ``bits``, ``d``, ``init``, or ``iteration`` outside ``0..n_iter``.

    Notes
    -----
    One Lloyd update sets each boundary to the midpoint of its neighbouring
    centroids (the nearest-centroid rule, best for fixed centroids) and each
    centroid to the conditional mean of its cell (best for fixed cells), so
    the MSE never increases from one state to the next.

    Examples
    --------
    >>> s = compute_lloyd_max_state(2, iteration=5)
    >>> s.mse_history.shape, bool(s.mse <= s.start_mse)
    ((6,), True)
    """
    from ._validate import check_bits
    from .codebooks import lloyd_max_codebook, uniform_codebook

    bits = check_bits(bits)
    n_iter = _l07_check_int(n_iter, "n_iter", 0, 10_000)
    iteration = _l07_check_int(iteration, "iteration", 0, n_iter)
    if init not in ("span", "uniform"):
        raise ValueError(f'init must be "span" or "uniform", got {init!r}')
    optimal = lloyd_max_codebook(bits, d)      # validates d
    history = _lloyd_history(bits, optimal.d, init, n_iter)
    return LloydMaxState(
        bits=bits, d=history[0].d, init=init, n_iter=n_iter, iteration=iteration,
        codebook=history[iteration],
        mse_history=np.array([s.mse for s in history[:iteration + 1]]),
        start_mse=history[0].mse, uniform_mse=uniform_codebook(bits, d).mse,
        optimal_mse=optimal.mse, optimal_centroids=optimal.centroids)


class LloydMaxStepper:
    """State of the Lloyd-Max app: Next / Back / Reset through the iterations.

    The methods change the settings and return the new
    :class:`LloydMaxState`; tests call them instead of pressing buttons.

    Examples
    --------
    >>> s = LloydMaxStepper(bits=2)
    >>> s.next().iteration, s.back().iteration, s.back().iteration
    (1, 0, 0)
    """

    def __init__(self, bits: int = 3, d=None, init: str = "span", n_iter: int = 60):
        self.bits, self.d, self.init, self.n_iter = bits, d, init, n_iter
        self.iteration = 0
        self.state = compute_lloyd_max_state(bits, 0, d, init, n_iter)

    def _update(self) -> LloydMaxState:
        self.state = compute_lloyd_max_state(self.bits, self.iteration, self.d, self.init,
                                             self.n_iter)
        return self.state

    def next(self, steps: int = 1) -> LloydMaxState:
        """``steps`` more Lloyd updates (stops at ``n_iter``)."""
        self.iteration = min(self.iteration + int(steps), self.n_iter)
        return self._update()

    def back(self) -> LloydMaxState:
        """One update back (stays at 0)."""
        self.iteration = max(self.iteration - 1, 0)
        return self._update()

    def reset(self) -> LloydMaxState:
        """Back to the starting codebook."""
        self.iteration = 0
        return self._update()

    def run(self) -> LloydMaxState:
        """Jump to the last iteration."""
        self.iteration = self.n_iter
        return self._update()

    def configure(self, bits=None, d=..., init=None) -> LloydMaxState:
        """Change bits, law or start (``d=None`` is the Gaussian); restarts at iteration 0."""
        new_bits = self.bits if bits is None else bits
        new_d = self.d if d is ... else d
        new_init = self.init if init is None else init
        state = compute_lloyd_max_state(new_bits, 0, new_d, new_init, self.n_iter)
        self.bits, self.d, self.init, self.iteration, self.state = \
            new_bits, new_d, new_init, 0, state
        return state


def _l07_show_figure(out, draw, *args, figsize=(9, 3), ncols=1, **kw):
    """Clear ``out`` and display a fresh figure drawn by ``draw(axes, *args)``."""
    from IPython.display import display

    with out:
        out.clear_output(wait=True)
        fig, axes = plt.subplots(1, ncols, figsize=figsize, **kw)
        draw(axes, *args)
        display(fig)
        plt.close(fig)


def lloyd_max_app(stepper: LloydMaxStepper | None = None):
    """Lesson 07's app: step the Lloyd-Max iterations and watch slots and MSE move.

    Controls: bits (1-4), the law (N(0, 1) or the exact law at d = 8, 16, 128),
    the start, and Reset / Back / Next / +10 / Run buttons. The figure is
    :func:`turboquant_lab.plots.draw_lloyd_max`.

    Parameters
    ----------
    stepper : LloydMaxStepper, optional
        The state the buttons drive (a new one at 3 bits, N(0, 1), by default).

    Returns
    -------
    ipywidgets.VBox
    """
    st = stepper if stepper is not None else LloydMaxStepper()
    bits = widgets.IntSlider(value=min(st.bits, 4), min=1, max=4, description="bits",
                             continuous_update=False)
    law = widgets.Dropdown(options=_LLOYD_LAWS, value=0 if st.d is None else st.d,
                           description="law")
    start = widgets.Dropdown(options=_LLOYD_STARTS, value=st.init, description="start")
    buttons = {name: widgets.Button(description=name, layout=widgets.Layout(width="70px"))
               for name in ("Reset", "Back", "Next", "+10", "Run")}
    info = widgets.HTML()
    out = widgets.Output()

    def redraw(state):
        info.value = (f"iteration <b>{state.iteration}</b> of {state.n_iter} &nbsp; "
                      f"MSE {state.mse:.5f} (start {state.start_mse:.5f}, "
                      f"best uniform {state.uniform_mse:.5f}, "
                      f"Lloyd-Max {state.optimal_mse:.5f})")
        _l07_show_figure(out, plots.draw_lloyd_max, state, figsize=(9, 3), ncols=2,
                     gridspec_kw={"width_ratios": [3, 2]})

    def on_settings(_change):
        redraw(st.configure(bits=bits.value, d=None if law.value == 0 else law.value,
                            init=start.value))

    for control in (bits, law, start):
        control.observe(on_settings, names="value")
    actions = {"Reset": st.reset, "Back": st.back, "Next": st.next,
               "+10": lambda: st.next(10), "Run": st.run}
    for name, button in buttons.items():
        button.on_click(lambda _b, act=actions[name]: redraw(act()))
    redraw(st.state)
    return widgets.VBox([widgets.HBox([bits, law, start]),
                         widgets.HBox(list(buttons.values()) + [info]), out])


#: Methods of lesson 08's comparison: no rotation (naive min-max), dense, randomized Hadamard.
PIPELINE_METHODS = ("none", "dense", "hadamard")
_PIPELINE_LABELS = {"none": "naive min-max (no rotation)", "dense": "dense rotation + Lloyd-Max",
                    "hadamard": "WHT + Lloyd-Max"}
_PIPELINE_DATA = ("outliers", "gaussian")


@_dataclass(frozen=True, eq=False)
class PipelineComparison:
    """One method's round trip on a batch of vectors (lesson 08's widget).

    Attributes
    ----------
    method : {"none", "dense", "hadamard"}
    label : str
        What the method is, in words.
    bits, d, n, seed : the settings.
    data : {"outliers", "gaussian"}
        KV-like vectors with outlier channels, or plain N(0, 1) vectors.
    relative_mse : float
        Measured mean of ``||x - x_hat||^2 / ||x||^2`` over the ``n`` vectors.
    predicted : float or None
        The codebook's prediction (``TurboQuantMSE.expected_mse``); None for
        naive quantization, which has no data-independent prediction.
    per_vector : (n,) ndarray
        ``||x - x_hat||^2 / ||x||^2`` of each vector.
    bits_per_coordinate : float
        Storage per coordinate with the side information: float16 norm for
        TurboQuant (``Encoded.bits_per_coordinate``), float32 ``lo`` and
        ``scale`` for naive min-max.
    seconds_per_vector : float
        Wall-clock time of encode + decode per vector (best of ``repeats``);
        a timing, so it changes from run to run.
    example, example_hat : (d,) ndarray
        The first vector and its reconstruction.
    outlier_channels : (k,) ndarray
        The outlier channels of the data (empty for ``"gaussian"``).
    """

    method: str
    label: str
    bits: int
    d: int
    n: int
    seed: int
    data: str
    relative_mse: float
    predicted: float | None
    per_vector: np.ndarray
    bits_per_coordinate: float
    seconds_per_vector: float
    example: np.ndarray
    example_hat: np.ndarray
    outlier_channels: np.ndarray


def _pipeline_round_trip(x, bits: int, method: str, seed: int):
    """``(encode, decode, predicted, bits_per_coordinate_of)`` for one method."""
    if method == "none":
        from .uniform import uniform_dequantize, uniform_quantize

        return (lambda v: uniform_quantize(v, bits), uniform_dequantize, None,
                lambda q: q.bits_per_coordinate(side_bits=32))
    from .turboquant import TurboQuantMSE

    tq = TurboQuantMSE(x.shape[-1], bits, seed=seed, rotation=method)
    return tq.encode, tq.decode, tq.expected_mse, lambda enc: enc.bits_per_coordinate


def compute_pipeline_comparison(bits: int = 3, method: str = "hadamard", n: int = 2000,
                                d: int = 128, seed: int = 0, data: str = "outliers",
                                n_outliers: int = 5, outlier_scale: float = 20.0,
                                repeats: int = 3) -> PipelineComparison:
    """Encode and decode ``n`` vectors with one method; measure the error, the bits and the time.

    Parameters
    ----------
    bits : int
        Bits per coordinate, 1 to 8 (the same for every method).
    method : {"none", "dense", "hadamard"}
        ``"none"``: naive per-vector min-max uniform quantization (lessons
        01-02); ``"dense"``: ``TurboQuantMSE(rotation="dense")`` (Haar rotation,
        Lloyd-Max codebook); ``"hadamard"``: ``TurboQuantMSE(rotation="hadamard")``.
    n, d : int
        Number and dimension of the vectors (``d`` a power of two for "hadamard"
        to avoid padding).
    seed : int
        Seeds the data and the rotation.
    data : {"outliers", "gaussian"}
        ``make_kv_vectors(n, d, n_outliers, outlier_scale, seed)`` or plain
        N(0, 1) vectors (no outlier channels).
    n_outliers, outlier_scale : int, float
        The outlier channels of ``"outliers"`` data.
    repeats : int
        The round trip is timed this many times; the best time is kept.

    Returns
    -------
    PipelineComparison

    Raises
    ------
    ValueError, TypeError
        Unknown ``method`` or ``data``, bad ``bits``, ``n``, ``d`` or ``repeats``.

    Notes
    -----
    Relative MSE: ``mean_i ||x_i - x_hat_i||^2 / ||x_i||^2``. TurboQuant
    predicts it as the codebook's MSE: exact on average over a Haar rotation
    for any fixed vector, and for any fixed rotation when the directions of
    the data are uniform (``data="gaussian"``). For data dominated by a few
    channels and one fixed rotation it is only approximate (lesson 08 shows
    why the randomized Hadamard then does *better* than predicted).

    Examples
    --------
    >>> r = compute_pipeline_comparison(3, "dense", n=500, data="gaussian")
    >>> bool(abs(r.relative_mse / r.predicted - 1) < 0.05)
    True
    """
    import time

    from ._validate import check_bits, check_dim
    from .data import kv_outlier_channels, make_kv_vectors

    bits = check_bits(bits)
    if method not in PIPELINE_METHODS:
        raise ValueError(f"method must be one of {PIPELINE_METHODS}, got {method!r}")
    if data not in _PIPELINE_DATA:
        raise ValueError(f"data must be one of {_PIPELINE_DATA}, got {data!r}")
    n, d = check_dim(n, "n"), check_dim(d, "d")
    repeats = check_dim(repeats, "repeats")
    if data == "outliers":
        x = make_kv_vectors(n, d, n_outliers=n_outliers, outlier_scale=outlier_scale, seed=seed)
        channels = kv_outlier_channels(d, n_outliers, seed)
    else:
        x = np.random.default_rng([seed, 8]).standard_normal((n, d)).astype(np.float32)
        channels = np.array([], dtype=np.int64)
    encode, decode, predicted, bits_of = _pipeline_round_trip(x, bits, method, seed)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        enc = encode(x)
        x_hat = decode(enc)
        best = min(best, time.perf_counter() - start)
    x64, xh64 = x.astype(np.float64), np.asarray(x_hat, dtype=np.float64)
    per_vector = np.sum((x64 - xh64) ** 2, axis=-1) / np.sum(x64 ** 2, axis=-1)
    return PipelineComparison(
        method=method, label=_PIPELINE_LABELS[method], bits=bits, d=d, n=n, seed=seed,
        data=data, relative_mse=float(per_vector.mean()), predicted=predicted,
        per_vector=per_vector, bits_per_coordinate=float(bits_of(enc)),
        seconds_per_vector=best / n, example=x64[0], example_hat=xh64[0],
        outlier_channels=channels)


def pipeline_app(n: int = 2000, d: int = 128, seed: int = 0):
    """Lesson 08's app: bits, rotation method and data; error (measured vs predicted) and cost.

    Controls: bits (1-8), method (none = naive min-max / dense / randomized
    Hadamard), data (KV vectors with outliers, or plain Gaussian vectors). The
    figure is :func:`turboquant_lab.plots.draw_pipeline_comparison`.

    Returns
    -------
    ipywidgets.VBox
    """
    bits = widgets.IntSlider(value=3, min=1, max=8, description="bits", continuous_update=False)
    method = widgets.ToggleButtons(options=[("none (naive)", "none"), ("dense", "dense"),
                                            ("Hadamard", "hadamard")], value="hadamard",
                                   description="rotation")
    data = widgets.Dropdown(options=[("KV vectors with outliers", "outliers"),
                                     ("Gaussian vectors", "gaussian")], value="outliers",
                            description="data")

    def show(bits, method, data):
        from IPython.display import display

        result = compute_pipeline_comparison(bits, method, n=n, d=d, seed=seed, data=data)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [3, 2]})
        plots.draw_pipeline_comparison(axes, result)
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(show, {"bits": bits, "method": method, "data": data})
    return widgets.VBox([widgets.HBox([bits, data]), method, out])


# ---- end lessons 07-08 ------------------------------------------------------

# ---- lessons 09-11 ----------------------------------------------------------
# -- lesson 09: the GPU kernel --------------------------------------------------
from dataclasses import dataclass as _dataclass09  # noqa: E402  (lesson 09)

#: Published specifications (NVIDIA product pages / data sheets): memory bandwidth in GB/s and
#: FP32 peak in TFLOP/s without tensor cores (a fused multiply-add counts as two operations).
GPU_SPECS = {
    "T4": {"bandwidth_gbs": 320.0, "fp32_tflops": 8.1,
           "source": "https://www.nvidia.com/en-us/data-center/tesla-t4/"},
    "A100 80GB SXM": {"bandwidth_gbs": 2039.0, "fp32_tflops": 19.5,
                      "source": "https://www.nvidia.com/en-us/data-center/a100/"},
    "H200 SXM": {"bandwidth_gbs": 4800.0, "fp32_tflops": 67.0,
                 "source": "https://www.nvidia.com/en-us/data-center/h200/"},
}


def compute_kernel_arithmetic(dims, specs=None, itemsize=4):
    """Why the FWHT is memory bound: additions per byte moved against each GPU's balance.

    Parameters
    ----------
    dims : sequence of int
        Powers of two.
    specs : dict, optional
        ``{name: {"bandwidth_gbs": ..., "fp32_tflops": ...}}``; default :data:`GPU_SPECS`.
    itemsize : int
        Bytes per element (4 for float32): one read and one write per element.

    Returns
    -------
    dict with ``dims``; ``adds_per_byte`` (``log2(d) / (2 itemsize)``: ``d log2 d``
    additions per ``2 itemsize d`` bytes); ``balance`` (per GPU: additions per
    second / bytes per second, where an addition takes one FP32 issue slot, half
    the quoted FLOP rate that counts a multiply-add as two); ``fwht_vs_copy`` and
    ``dense_vs_copy`` (per GPU, per d: predicted time / time of a copy, the
    larger of the memory and the arithmetic time; the dense product does ``d``
    multiply-adds per element).
    """
    specs = GPU_SPECS if specs is None else specs
    dims = np.asarray(dims, dtype=np.int64)
    log_d = np.log2(dims)
    adds_per_byte = log_d / (2 * itemsize)
    balance, fwht_ratio, dense_ratio = {}, {}, {}
    for name, s in specs.items():
        bytes_per_s = s["bandwidth_gbs"] * 1e9
        ops_per_s = s["fp32_tflops"] * 1e12 / 2  # additions or multiply-adds per second
        balance[name] = ops_per_s / bytes_per_s
        copy_s = 2 * itemsize / bytes_per_s  # per element
        fwht_ratio[name] = np.maximum(copy_s, log_d / ops_per_s) / copy_s
        dense_ratio[name] = np.maximum(copy_s, dims / ops_per_s) / copy_s
    return {"dims": dims, "adds_per_byte": adds_per_byte, "balance": balance,
            "fwht_vs_copy": fwht_ratio, "dense_vs_copy": dense_ratio}


#: Layouts of the kernel stepper: a teaching one (d = 64 with warps of 4 lanes, so that all
#: four kinds of stage appear) and two of the real kernel's table (log2 d, custom constants).
KERNEL_LAYOUTS = {
    "teaching: d = 64, warps of 4 lanes": (6, dict(vec=4, threads_per_row=8, chunks=2,
                                                   rows_per_block=1, warp_size=4)),
    "real kernel: d = 256": (8, None),
    "real kernel: d = 1024": (10, None),
}


def kernel_layout(name):
    """The :class:`~turboquant_lab.gpu_emulation.FwhtConfig` of a :data:`KERNEL_LAYOUTS` entry."""
    from .gpu_emulation import FwhtConfig, fwht_config

    log_d, custom = KERNEL_LAYOUTS[name]
    return fwht_config(1 << log_d) if custom is None else FwhtConfig(log_d, **custom)


@_dataclass09
class KernelStageState:
    """One stage of the emulated kernel on one vector (what the kernel stepper shows).

    ``owner[e]`` is the thread (of the row) that holds element ``e``, in its
    register ``slot[e] = c * vec + i``; ``pairs`` the element pairs of this
    stage (empty at stage 0); ``values`` the vector after it (unnormalized).
    """

    config: object
    stage: int
    n_stages: int
    kind: str
    stride: int
    detail: int
    values: np.ndarray
    owner: np.ndarray
    slot: np.ndarray
    pairs: np.ndarray
    vmax: float
    matches_fwht_stages: bool

    @property
    def d(self) -> int:
        return self.config.d

    @property
    def nonzero(self) -> int:
        return int(np.count_nonzero(self.values))


def compute_kernel_stage(x, stage, config=None):
    """The emulated kernel after ``stage`` stages, on one vector ``x`` (lesson 09).

    Parameters
    ----------
    x : (d,) array_like
        The vector (float32 in the kernel).
    stage : int
        0 (the loaded input) to ``log2 d``; clipped to that range.
    config : FwhtConfig, optional
        Default: the real kernel's configuration for ``d``.

    Returns
    -------
    KernelStageState
        Also says whether the values equal ``fwht_stages(x)[stage]`` bit for bit.
    """
    from .gpu_emulation import emulate_fwht_trace, fwht_config
    from .hadamard import fwht_stages

    x = np.asarray(x, dtype=np.float32)
    cfg = fwht_config(x.shape[-1]) if config is None else config
    records = emulate_fwht_trace(x, config=cfg)
    stage = int(min(max(stage, 0), len(records) - 1))
    rec = records[stage]
    d = cfg.d
    slot = np.empty(d, dtype=np.int64)
    slot[cfg.element_index()] = np.arange(cfg.chunks)[None, :, None] * cfg.vec + \
        np.arange(cfg.vec)[None, None, :]
    if stage == 0:
        pairs = np.zeros((0, 2), dtype=np.int64)
    else:
        e = np.arange(d)
        low = e[(e & rec.stride) == 0]
        pairs = np.stack([low, low + rec.stride], axis=1)
    vmax = max(float(np.abs(r.values).max()) for r in records) or 1.0
    same = bool(np.array_equal(rec.values, fwht_stages(x)[stage]))
    return KernelStageState(cfg, stage, len(records) - 1, rec.kind, rec.stride, rec.detail,
                            rec.values, cfg.owner(), slot, pairs, vmax, same)


_STAGE_WHERE = {
    "input": "the vector as loaded: each thread holds its elements in registers",
    "registers": "both elements of each pair sit in one thread: a register add and subtract",
    "warp shuffle": "the pairs sit in two lanes of one warp: __shfl_xor_sync, xor mask {detail}",
    "shared memory": "the pairs sit in two different warps: an exchange through shared memory",
    "registers (chunks)": "back in one thread (two of its vector loads): register adds again",
}


def kernel_stage_caption(state) -> str:
    """One line for the stepper: the stage, its stride and where its pairs are."""
    where = _STAGE_WHERE[state.kind].format(detail=state.detail)
    if state.stage == 0:
        return f"input (stage 0 of {state.n_stages}): {where}"
    return f"stage {state.stage} of {state.n_stages}, stride {state.stride}: {where}"


class KernelStepper:
    """State of the kernel stepper (lesson 09): Next / Back through the stages of the emulation.

    Parameters
    ----------
    x : (d,) array_like, optional
        Default ``e_0``.
    config : FwhtConfig, optional
        Default: the teaching layout (d = 64, warps of 4 lanes).

    Examples
    --------
    >>> s = KernelStepper()
    >>> s.next().kind, s.next().kind, s.next().kind
    ('registers', 'registers', 'warp shuffle')
    """

    def __init__(self, x=None, config=None):
        self.config = kernel_layout(next(iter(KERNEL_LAYOUTS))) if config is None else config
        self.x = self._input(x)
        self._state = compute_kernel_stage(self.x, 0, self.config)

    def _input(self, x):
        if x is None:
            x = np.zeros(self.config.d, dtype=np.float32)
            x[0] = 1.0
        x = np.asarray(x, dtype=np.float32)
        if x.shape != (self.config.d,):
            raise ValueError(f"x must have shape ({self.config.d},) for this layout, got {x.shape}")
        return x

    @property
    def state(self) -> KernelStageState:
        return self._state

    @property
    def stage(self) -> int:
        return self._state.stage

    def _go(self, stage):
        self._state = compute_kernel_stage(self.x, stage, self.config)
        return self._state

    def next(self) -> KernelStageState:
        """One stage forward (stays at the last)."""
        return self._go(self.stage + 1)

    def back(self) -> KernelStageState:
        """One stage back (stays at 0)."""
        return self._go(self.stage - 1)

    def reset(self, x=None, config=None) -> KernelStageState:
        """Back to stage 0, optionally with a new layout and/or input (``e_0`` by default)."""
        if config is not None:
            self.config = config
        self.x = self._input(x)
        return self._go(0)


#: Inputs of the kernel stepper, each a function of d.
KERNEL_INPUTS = {
    "e_0 = [1, 0, ..., 0]": lambda d: np.eye(d, dtype=np.float32)[0],
    "e_5": lambda d: np.eye(d, dtype=np.float32)[5],
    "random (seed 0)": lambda d: np.random.default_rng(0).standard_normal(d).astype(np.float32),
}


def kernel_app():
    """Lesson 09's stepper: the butterfly stages of the GPU kernel, thread by thread.

    A layout menu (the teaching layout or the real kernel at d = 256 or 1024),
    an input menu, Back / Next. Returns the widget; its ``stepper`` attribute is
    the :class:`KernelStepper`.
    """
    stepper = KernelStepper()
    layout = widgets.Dropdown(options=list(KERNEL_LAYOUTS), description="layout",
                              layout=widgets.Layout(width="330px"))
    choice = widgets.Dropdown(options=list(KERNEL_INPUTS), description="input")
    back, nxt, caption, out, show = _stepper_view(stepper, kernel_stage_caption,
                                                  plots.draw_kernel_stage, (8, 3.8))

    def on_change(_):
        cfg = kernel_layout(layout.value)
        show(stepper.reset(KERNEL_INPUTS[choice.value](cfg.d), cfg))

    layout.observe(on_change, names="value")
    choice.observe(on_change, names="value")
    app = widgets.VBox([widgets.HBox([layout, choice]), widgets.HBox([back, nxt]), caption, out])
    app.stepper = stepper
    return app


def time_gpu_fwht(dims, mib=64.0, repeat=10, seed=0):
    """Seconds per call on the GPU (the FWHT kernel, ``cupy.copyto``, a CuPy matrix product)
    and on the CPU (NumPy ``fwht``), for float32 arrays of ``mib`` MiB. Needs a GPU.

    Returns
    -------
    dict with ``dims``, ``nbytes`` (bytes read + written per call), ``kernel``,
    ``copy``, ``matmul``, ``numpy`` (median seconds per call, float arrays; the
    NumPy figure is measured on a 1/16 slice and scaled up) and
    ``max_rel_err`` (the kernel against NumPy). Wall-clock figures: print them
    only in a plot or on a line marked ``(timed)``.

    Raises
    ------
    RuntimeError
        Without a usable GPU (see :func:`turboquant_lab.backend.gpu_available`).
    """
    import time

    from .backend import gpu_available
    from .hadamard import fwht, hadamard

    if not gpu_available():
        raise RuntimeError("no usable CUDA GPU: time_gpu_fwht needs CuPy and a GPU")
    import cupy as cp

    from .gpu import event_times

    def median_gpu(f):
        return float(np.median(event_times(f, repeat, warmup=1)))

    res = {k: [] for k in ("kernel", "copy", "matmul", "numpy")}
    err, nbytes = 0.0, []
    for d in dims:
        rows = int(mib * 2**20) // (4 * d)
        x_host = np.random.default_rng(seed).standard_normal((rows, d), dtype=np.float32)
        x = cp.asarray(x_host)
        out = cp.empty_like(x)
        h = cp.asarray(hadamard(d, dtype=np.float32) / np.float32(np.sqrt(d)))
        res["kernel"].append(median_gpu(lambda: fwht(x)))
        res["copy"].append(median_gpu(lambda: cp.copyto(out, x)))
        res["matmul"].append(median_gpu(lambda: cp.matmul(x, h, out=out)))
        part = x_host[: max(1, rows // 16)]
        t0 = time.perf_counter()
        y_part = fwht(part)
        res["numpy"].append((time.perf_counter() - t0) * rows / len(part))
        y_gpu = cp.asnumpy(fwht(x[: len(part)]))
        err = max(err, float(np.abs(y_gpu - y_part).max() / np.abs(y_part).max()))
        nbytes.append(2 * x.nbytes)
    result = {k: np.asarray(v) for k, v in res.items()}
    result.update(dims=np.asarray(dims), nbytes=np.asarray(nbytes), max_rel_err=err)
    return result


# -- end lesson 09 --------------------------------------------------------------
# -- lessons 10-11: inner products and QJL, real KV caches --------------------
from dataclasses import dataclass as _dataclass1011  # noqa: E402  (lessons 10-11)


def _unit_rows(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def correlated_pairs(n, d, rng, correlation_noise=1.0):
    """``n`` pairs of unit vectors ``(x, y)`` with ``y = unit(x + noise / sqrt(d))``: ``<x, y>`` ~ 0.7.

    A shrinkage of the estimate (``E est = a <x, y>``) shows as a mean error
    only when ``<x, y>`` is not centred at 0, hence correlated pairs.
    """
    x = _unit_rows(rng.standard_normal((n, d)))
    y = _unit_rows(x + correlation_noise * rng.standard_normal((n, d)) / np.sqrt(d))
    return x.astype(np.float32), y


@_dataclass1011
class InnerProductStats:
    """Bias and spread of inner-product estimates from the MSE and the prod quantizer (lesson 10).

    Every array has one entry per value of ``bits`` (total bits per coordinate).

    Attributes
    ----------
    bits : (k,) int ndarray
    d : int
    n_pairs : int
        Pairs per bit width (``n_quantizers * pairs_per_quantizer``).
    mse_ratio, prod_ratio : (k,) ndarray
        ``mean(estimate) / mean(<x, y>)``: 1 for an unbiased estimator.
    one_minus_D : (k,) ndarray
        ``1 - D(b)`` of the ``b``-bit codebook: the predicted ``mse_ratio``.
    mse_bias, prod_bias : (k,) ndarray
        Mean error ``estimate - <x, y>``.
    mse_bias_se, prod_bias_se : (k,) ndarray
        Standard errors of those means (from the per-quantizer means).
    mse_sq_error, prod_sq_error : (k,) ndarray
        Mean squared error ``E (estimate - <x, y>)^2``.
    prod_variance_bound : (k,) ndarray
        ``pi / (2 d) D(b - 1)`` (:attr:`TurboQuantProd.variance_bound`).
    paper_bound : (k,) ndarray
        ``sqrt(3) pi^2 / (d 4^b)`` (the paper's Theorem 2).
    """

    bits: np.ndarray
    d: int
    n_pairs: int
    mse_ratio: np.ndarray
    prod_ratio: np.ndarray
    one_minus_D: np.ndarray
    mse_bias: np.ndarray
    prod_bias: np.ndarray
    mse_bias_se: np.ndarray
    prod_bias_se: np.ndarray
    mse_sq_error: np.ndarray
    prod_sq_error: np.ndarray
    prod_variance_bound: np.ndarray
    paper_bound: np.ndarray


def compute_inner_product_stats(bits=(1, 2, 3, 4), d=128, n_quantizers=40, pairs_per_quantizer=250,
                                seed=0) -> InnerProductStats:
    """Estimate ``<x, y>`` for unit pairs with ``TurboQuantMSE(d, b)`` and ``TurboQuantProd(d, b)``.

    Each bit width uses ``n_quantizers`` quantizers (seeds ``0, 1, ...``: the
    randomness the theorems average over) and ``pairs_per_quantizer`` fresh
    pairs from :func:`correlated_pairs` for each. The MSE estimate is
    ``<x_hat, y>``; the prod estimate is ``TurboQuantProd.inner_product``.

    Returns
    -------
    InnerProductStats
    """
    from .turboquant import TurboQuantMSE, TurboQuantProd

    bits = np.asarray(list(bits), dtype=int)
    rng = np.random.default_rng(seed)
    cols = {k: [] for k in ("mse_ratio", "prod_ratio", "one_minus_D", "mse_bias", "prod_bias",
                            "mse_bias_se", "prod_bias_se", "mse_sq_error", "prod_sq_error",
                            "prod_variance_bound", "paper_bound")}
    for b in bits:
        e_mse, e_prod, exact, m_mse, m_prod = [], [], [], [], []
        for s in range(n_quantizers):
            x, y = correlated_pairs(pairs_per_quantizer, d, rng)
            mse, prod = TurboQuantMSE(d, int(b), seed=s), TurboQuantProd(d, int(b), seed=s)
            ex = np.sum(x * y, axis=1)
            est_mse = np.sum(mse.decode(mse.encode(x)) * y, axis=1)
            est_prod = np.einsum("ii->i", prod.inner_product(prod.encode(x), y))
            e_mse.append(est_mse - ex)
            e_prod.append(est_prod - ex)
            exact.append(ex)
            m_mse.append(np.mean(est_mse - ex))
            m_prod.append(np.mean(est_prod - ex))
        e_mse, e_prod, exact = map(np.concatenate, (e_mse, e_prod, exact))
        cols["mse_ratio"].append(np.mean(exact + e_mse) / np.mean(exact))
        cols["prod_ratio"].append(np.mean(exact + e_prod) / np.mean(exact))
        cols["one_minus_D"].append(1.0 - mse.expected_mse)
        cols["mse_bias"].append(np.mean(e_mse))
        cols["prod_bias"].append(np.mean(e_prod))
        cols["mse_bias_se"].append(np.std(m_mse, ddof=1) / np.sqrt(n_quantizers))
        cols["prod_bias_se"].append(np.std(m_prod, ddof=1) / np.sqrt(n_quantizers))
        cols["mse_sq_error"].append(np.mean(e_mse ** 2))
        cols["prod_sq_error"].append(np.mean(e_prod ** 2))
        cols["prod_variance_bound"].append(prod.variance_bound)
        cols["paper_bound"].append(prod.paper_bound)
    return InnerProductStats(bits=bits, d=d, n_pairs=n_quantizers * pairs_per_quantizer,
                             **{k: np.array(v, dtype=float) for k, v in cols.items()})


@_dataclass1011
class AttentionDemo:
    """One query against a cache of keys: exact scores and the two quantizers' (lesson 10).

    Attributes
    ----------
    bits : int
        Total bits per coordinate of both quantizers.
    scores, scores_mse, scores_prod : (n,) ndarray
        Raw inner products ``<q, k_j>``: exact, from ``TurboQuantMSE`` decoded
        keys, from ``TurboQuantProd.inner_product``.
    weights, weights_mse, weights_prod : (n,) ndarray
        ``softmax(scores / sqrt(d))`` of each.
    top : (n_top,) int ndarray
        The keys with the largest exact weights, largest first.
    fidelity_mse, fidelity_prod : AttentionFidelity
        :func:`~turboquant_lab.attention.attention_fidelity` for this query (values exact).
    slope_mse, slope_prod : float
        Least-squares slope (through 0) of estimated against exact scores:
        below 1 for the MSE keys (``1 - D(bits)`` on average for isotropic keys
        or a Haar rotation; less shrunk for these outlier keys under the
        randomized Hadamard), around 1 for the prod estimate (whose errors,
        for one fixed ``S`` and one query, are correlated across keys).
    """

    bits: int
    scores: np.ndarray
    scores_mse: np.ndarray
    scores_prod: np.ndarray
    weights: np.ndarray
    weights_mse: np.ndarray
    weights_prod: np.ndarray
    top: np.ndarray
    fidelity_mse: object
    fidelity_prod: object
    slope_mse: float = 1.0
    slope_prod: float = 1.0


def attention_demo_data(n_keys=1024, d=128, seed=0):
    """Lesson 10's cache: synthetic keys and values with 5 outlier channels, and one N(0, I) query."""
    from .data import make_kv_vectors

    K = make_kv_vectors(n_keys, d, seed=seed)
    V = make_kv_vectors(n_keys, d, seed=seed + 1)
    q = np.random.default_rng([seed, 10]).standard_normal(d)
    return q, K, V


def compute_attention_demo(bits, n_keys=1024, d=128, seed=0, n_top=12) -> AttentionDemo:
    """Scores and softmax weights of one query from exact, MSE-quantized and prod-quantized keys.

    Parameters
    ----------
    bits : int
        Total bits per coordinate (1-8) for both quantizers: ``TurboQuantMSE(d, bits)``
        and ``TurboQuantProd(d, bits)`` (``bits - 1`` MSE bits + 1 QJL bit).
    n_keys, d, seed : int
        The cache (:func:`attention_demo_data`); the quantizers use ``seed`` too.
    n_top : int
        How many of the heaviest keys :attr:`AttentionDemo.top` lists.
    """
    from .attention import attention_fidelity, softmax
    from .turboquant import TurboQuantMSE, TurboQuantProd

    q, K, V = attention_demo_data(n_keys, d, seed)
    mse, prod = TurboQuantMSE(d, bits, seed=seed), TurboQuantProd(d, bits, seed=seed)
    K_mse = mse.decode(mse.encode(K))
    s = K.astype(np.float64) @ q
    s_mse = K_mse.astype(np.float64) @ q
    s_prod = prod.inner_product(prod.encode(K), q).astype(np.float64)
    tau = 1.0 / np.sqrt(d)
    w = softmax(tau * s)
    return AttentionDemo(
        bits=int(bits), scores=s, scores_mse=s_mse, scores_prod=s_prod,
        weights=w, weights_mse=softmax(tau * s_mse), weights_prod=softmax(tau * s_prod),
        top=np.argsort(-w, kind="stable")[:n_top],
        fidelity_mse=attention_fidelity(q, K, V, K_hat=K_mse),
        fidelity_prod=attention_fidelity(q, K, V, scores_hat=s_prod),
        slope_mse=float(s @ s_mse / (s @ s)), slope_prod=float(s @ s_prod / (s @ s)),
    )


def attention_demo_app(n_keys=1024, d=128, seed=0):
    """Lesson 10's app: a bits slider; scores and top attention weights, exact vs MSE vs prod.

    Returns
    -------
    ipywidgets.VBox
    """
    bits = widgets.IntSlider(value=2, min=1, max=5, description="bits", continuous_update=False)
    label = widgets.HTML()

    def show(bits):
        from IPython.display import display

        demo = compute_attention_demo(bits, n_keys=n_keys, d=d, seed=seed)
        fm, fp = demo.fidelity_mse, demo.fidelity_prod
        label.value = (f"KL(exact || MSE) = {fm.kl:.3g} nats, KL(exact || prod) = {fp.kl:.3g} nats; "
                       f"top-8 kept: MSE {fm.topk_agreement:.0%}, prod {fp.topk_agreement:.0%}")
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        plots.draw_attention_demo(axes, demo)
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(show, {"bits": bits})
    return widgets.VBox([bits, label, out])


def compare_kv_quantizers(Q, K, V, bits=(2, 3, 4), methods=("turboquant", "prod", "uniform"),
                          quantize_values=True, k=8, seed=0):
    """Attention fidelity and storage of KV quantizers at the same bits, averaged over heads.

    Parameters
    ----------
    Q : (..., m, d) float array
        Queries (kept exact), one block per head (leading axes = heads).
    K, V : (..., n, d) float arrays
        Keys and values, same leading axes.
    bits : sequence of int
        Bits per coordinate (codes only; the side information is counted in
        ``bits_per_coordinate``).
    methods : sequence of {"turboquant", "prod", "uniform"}
        ``"turboquant"``: :class:`TurboQuantMSE` keys (decoded) and values.
        ``"prod"``: :class:`TurboQuantProd` keys (scores from ``inner_product``),
        values as ``"turboquant"`` (the prod quantizer is for scores only).
        ``"uniform"``: per-vector min-max uniform keys and values, with ``lo``
        and ``scale`` stored as float16 (32 bits per vector).
    quantize_values : bool
        False keeps ``V`` exact (isolates what the keys do).
    k : int
        Top-k size of the agreement.
    seed : int
        Seed of the quantizers (one quantizer per method and bits, shared by every head).

    Returns
    -------
    list of dict
        One row per (bits, method): ``bits``, ``method``, ``bits_per_coordinate``
        (codes and side information, keys), ``key_rel_mse`` and
        ``value_rel_mse`` (``sum ||x - x_hat||^2 / sum ||x||^2``; for prod the
        decoded keys), ``predicted_rel_mse`` (the codebook's, turboquant only,
        else NaN), ``score_rmse``, ``score_bias``, ``kl``, ``output_rel_error``,
        ``topk_agreement`` (means over heads of :func:`attention_fidelity`).
    """
    from .attention import attention_fidelity
    from .turboquant import TurboQuantMSE, TurboQuantProd
    from .uniform import uniform_dequantize, uniform_quantize

    Q, K, V = (np.asarray(a, dtype=np.float32) for a in (Q, K, V))
    d = K.shape[-1]
    lead = K.shape[:-2]
    Qh, Kh, Vh = (a.reshape((-1,) + a.shape[-2:]) for a in (Q, K, V))
    rows = []

    def rel(x, x_hat):
        return float(np.sum((x - x_hat) ** 2) / np.sum(x.astype(np.float64) ** 2))

    for b in bits:
        for method in methods:
            if method == "uniform":
                def rec(x, b=b):
                    return uniform_dequantize(uniform_quantize(x, b))
                K_hat, V_hat = rec(Kh), rec(Vh)
                bpc, predicted, scores = b + 32 / d, float("nan"), None
            elif method in ("turboquant", "prod"):
                mse = TurboQuantMSE(d, b, seed=seed)
                V_hat = mse.decode(mse.encode(Vh))
                predicted = mse.expected_mse if method == "turboquant" else float("nan")
                if method == "turboquant":
                    enc = mse.encode(Kh)
                    K_hat, scores = mse.decode(enc), None
                else:
                    prod = TurboQuantProd(d, b, seed=seed)
                    encs = [prod.encode(kh) for kh in Kh]
                    K_hat = np.stack([prod.decode(e) for e in encs])
                    scores = [prod.inner_product(e, qh) for e, qh in zip(encs, Qh)]
                    enc = encs[0]
                bpc = enc.bits_per_coordinate
            else:
                raise ValueError(f'method must be "turboquant", "prod" or "uniform", got {method!r}')
            fids = []
            for h in range(Kh.shape[0]):
                kw = dict(V_hat=V_hat[h] if quantize_values else None, k=k)
                if scores is None:
                    kw["K_hat"] = K_hat[h]
                else:
                    kw["scores_hat"] = scores[h]
                fids.append(attention_fidelity(Qh[h], Kh[h], Vh[h], **kw))
            row = {"bits": int(b), "method": method, "bits_per_coordinate": float(bpc),
                   "key_rel_mse": rel(Kh, K_hat), "value_rel_mse": rel(Vh, V_hat),
                   "predicted_rel_mse": float(predicted), "heads": int(np.prod(lead, dtype=int))}
            for name in ("score_rmse", "score_bias", "kl", "output_rel_error", "topk_agreement"):
                row[name] = float(np.mean([getattr(f, name) for f in fids]))
            rows.append(row)
    return rows


def format_comparison(rows, columns=("bits", "method", "bits_per_coordinate", "output_rel_error",
                                     "kl", "topk_agreement")) -> str:
    """A plain-text table of :func:`compare_kv_quantizers` rows (3-4 significant digits)."""
    def fmt(v):
        if isinstance(v, str):
            return v
        if isinstance(v, (int, np.integer)):
            return str(v)
        return "nan" if not np.isfinite(v) else f"{v:.4g}"

    cells = [[c for c in columns]] + [[fmt(r[c]) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells)


def verdict_mse_vs_prod(rows, metric="output_rel_error") -> list:
    """One sentence per bit width saying which of turboquant (MSE) and prod has the better ``metric``.

    Lower is better for errors and KL; higher for ``topk_agreement``.
    """
    higher_better = metric == "topk_agreement"
    lines = []
    for b in sorted({r["bits"] for r in rows}):
        by = {r["method"]: r[metric] for r in rows if r["bits"] == b}
        if "turboquant" not in by or "prod" not in by:
            continue
        m, p = by["turboquant"], by["prod"]
        mse_wins = m > p if higher_better else m < p
        winner, loser = ("MSE (biased)", "prod (unbiased)") if mse_wins else ("prod (unbiased)",
                                                                              "MSE (biased)")
        lines.append(f"{b} bits: {winner} wins on {metric} ({m:.3g} MSE vs {p:.3g} prod)")
    return lines


# --- lesson 11: real KV caches


def channel_rms(x, seed=None):
    """RMS over tokens of each channel, ``(..., n, d) -> (..., d)``; after the randomized Hadamard if ``seed`` is given."""
    x = np.asarray(x, dtype=np.float64)
    if seed is not None:
        from .rotation import RandomizedHadamard

        x = RandomizedHadamard(x.shape[-1], seed=seed).forward(x)
    return np.sqrt(np.mean(x ** 2, axis=-2))


def max_over_mean(x, seed=None):
    """``max |x_i| / mean |x_i|`` of each vector, ``(..., d) -> (...)``; after the rotation if ``seed`` is given."""
    x = np.asarray(x, dtype=np.float64)
    if seed is not None:
        from .rotation import RandomizedHadamard

        x = RandomizedHadamard(x.shape[-1], seed=seed).forward(x)
    a = np.abs(x)
    return a.max(axis=-1) / a.mean(axis=-1)


@_dataclass1011
class RealHead:
    """What lesson 11's app shows for one layer and head of the real sample.

    Attributes
    ----------
    layer, head, bits, query : int
    tokens : tuple of str
    rms, rms_rotated : (d,) ndarray
        Channel RMS of the keys before and after the randomized Hadamard.
    mean : (d,) ndarray
        Channel mean of the keys.
    weights, weights_tq, weights_uniform : (n,) ndarray
        Attention weights of query token ``query``: exact, TurboQuant keys, uniform keys.
    rows : list of dict
        :func:`compare_kv_quantizers` for this head (all queries), turboquant and uniform.
    """

    layer: int
    head: int
    bits: int
    query: int
    tokens: tuple
    rms: np.ndarray
    rms_rotated: np.ndarray
    mean: np.ndarray
    weights: np.ndarray
    weights_tq: np.ndarray
    weights_uniform: np.ndarray
    rows: list


def compute_real_head(sample, layer=0, head=0, bits=3, query=10, seed=0) -> RealHead:
    """One head of the real sample: channel profile, one query's attention, exact vs quantized.

    Parameters
    ----------
    sample : KVSample
        From :func:`~turboquant_lab.data.load_kv_sample`.
    layer, head : int
        Which head.
    bits : int
        Bits per coordinate of both quantizers (TurboQuantMSE and uniform).
    query : int
        Token whose query's attention weights are shown.
    seed : int
        Rotation seed.
    """
    from .attention import softmax
    from .turboquant import TurboQuantMSE
    from .uniform import uniform_dequantize, uniform_quantize

    if not (0 <= layer < sample.layers and 0 <= head < sample.heads and 0 <= query < sample.n_tokens):
        raise ValueError(f"layer must be in [0, {sample.layers}), head in [0, {sample.heads}), "
                         f"query in [0, {sample.n_tokens}); got {layer}, {head}, {query}")
    Q = sample.queries[layer, head].astype(np.float32)
    K = sample.keys[layer, head].astype(np.float32)
    V = sample.values[layer, head].astype(np.float32)
    d = K.shape[-1]
    tq = TurboQuantMSE(d, bits, seed=seed)
    K_tq = tq.decode(tq.encode(K))
    K_u = uniform_dequantize(uniform_quantize(K, bits))
    tau = 1.0 / np.sqrt(d)
    q = Q[query].astype(np.float64)
    return RealHead(
        layer=layer, head=head, bits=bits, query=query, tokens=sample.tokens,
        rms=channel_rms(K), rms_rotated=channel_rms(K, seed=seed), mean=K.mean(axis=0),
        weights=softmax(tau * (K @ q)), weights_tq=softmax(tau * (K_tq @ q)),
        weights_uniform=softmax(tau * (K_u @ q)),
        rows=compare_kv_quantizers(Q, K, V, bits=(bits,), methods=("turboquant", "uniform"),
                                   seed=seed),
    )


def real_kv_app(sample=None, seed=0):
    """Lesson 11's app: layer, head, bits and query token over the real sample.

    Returns
    -------
    ipywidgets.VBox
    """
    if sample is None:
        from .data import load_kv_sample

        sample = load_kv_sample()
    layer = widgets.IntSlider(value=0, min=0, max=sample.layers - 1, description="layer",
                              continuous_update=False)
    head = widgets.IntSlider(value=0, min=0, max=sample.heads - 1, description="head",
                             continuous_update=False)
    bits = widgets.IntSlider(value=3, min=1, max=8, description="bits", continuous_update=False)
    query = widgets.IntSlider(value=10, min=0, max=sample.n_tokens - 1, description="query token",
                              continuous_update=False)
    label = widgets.HTML()

    def show(layer, head, bits, query):
        from IPython.display import display

        r = compute_real_head(sample, layer, head, bits, query, seed)
        tq, un = r.rows
        label.value = (f"this head, all {sample.n_tokens} queries: output error TurboQuant "
                       f"{tq['output_rel_error']:.3g} ({tq['bits_per_coordinate']:.3g} bits/coord), "
                       f"uniform {un['output_rel_error']:.3g} ({un['bits_per_coordinate']:.3g} bits/coord)")
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [2, 3]})
        plots.draw_real_head(axes, r)
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(show, {"layer": layer, "head": head, "bits": bits,
                                            "query": query})
    return widgets.VBox([widgets.HBox([layer, head]), widgets.HBox([bits, query]), label, out])


# ---- end lessons 09-11 ------------------------------------------------------
