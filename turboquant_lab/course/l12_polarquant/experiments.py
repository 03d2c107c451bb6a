"""Lesson 12 (PolarQuant): the numbers behind its figures and widgets, NumPy and SciPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import integrate, stats
from threadpoolctl import threadpool_limits

from turboquant_lab.data import make_kv_vectors
from turboquant_lab.polar import PolarQuant, angle_codebook, polar_angle_law, polar_transform
from turboquant_lab.rotation import RandomizedHadamard
from turboquant_lab.turboquant import TurboQuantMSE

__all__ = [
    "TREE_EXAMPLE", "PolarTreeState", "compute_polar_tree", "tree_caption", "PolarTreeStepper",
    "law_std", "AngleHistogram", "compute_angle_histogram", "UnitVectorFacts", "compute_unit_vector_facts",
    "bit_budget", "side_information", "angle_quantiles", "PAPER_SETTINGS", "TURBO_BITS", "allocation_table",
    "best_allocations", "frontier", "full_depth_settings", "make_codec", "Codec", "codec_list",
    "attention_errors", "compare_codecs",
    "unit_direction_rows", "closing_table", "format_rows", "verdict", "bits_spent",
]

#: the worked example of section 1: eight coordinates, small integers
TREE_EXAMPLE = np.array([3.0, 4.0, 1.0, -1.0, -2.0, 0.0, 2.0, -2.0])

#: PolarQuant with L = 4 levels and d/16 float16 radii: the paper's (4, 2, 2, 2) and its neighbours
PAPER_SETTINGS = ((1, 1, 1, 1), (2, 2, 2, 2), (3, 2, 2, 2), (4, 2, 2, 2), (4, 3, 3, 3))

#: TurboQuantMSE bit widths compared
TURBO_BITS = (1, 2, 3, 4, 5)


# --------------------------------------------------------------------------- 1. the tree


@dataclass(frozen=True)
class PolarTreeState:
    """The polar tree of one vector up to ``level`` (what the stepper shows).

    Attributes
    ----------
    x : (d,) ndarray
    level, levels : int
        Shown level (0: the coordinates) and the deepest one (``log2 d``).
    radii : list of ndarray
        ``radii[0] = x``, ``radii[l]`` the ``d / 2**l`` radii of level ``l`` (up to ``level``).
    angles : list of ndarray
        ``angles[l - 1]``: the level-``l`` angles (up to ``level``).
    """
    x: np.ndarray
    level: int
    levels: int
    radii: list = field(default_factory=list)
    angles: list = field(default_factory=list)

    @property
    def d(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_numbers(self) -> int:
        """Numbers that describe the vector at this level: radii plus angles so far (always ``d``)."""
        return int(self.radii[-1].size + sum(a.size for a in self.angles))


def compute_polar_tree(x, level) -> PolarTreeState:
    """The polar tree of the vector ``x`` (``d`` a power of two) up to ``level`` (0 .. log2 d)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be one vector of shape (d,), got shape {x.shape}")
    d = x.shape[0]
    if d < 2 or d & (d - 1):
        raise ValueError(f"d must be a power of two (2, 4, 8, ...), got {d}")
    levels = d.bit_length() - 1
    if not 0 <= level <= levels:
        raise ValueError(f"level must be between 0 and log2(d) = {levels}, got {level}")
    radii, angles = [x], []
    for lv in range(1, level + 1):
        r, a = polar_transform(x, lv)
        radii.append(r)
        angles.append(a[-1])
    return PolarTreeState(x, level, levels, radii, angles)


def tree_caption(state: PolarTreeState) -> str:
    """One line that says what the stepper shows at ``state``."""
    d, lv = state.d, state.level
    if lv == 0:
        return f"Level 0 of {state.levels}: the {d} coordinates."
    r = state.radii[-1]
    rng = "[0, 2π)" if lv == 1 else "[0, π/2]"
    pairs = "coordinates" if lv == 1 else f"level-{lv - 1} radii"
    what = (f"the norm {r[0]:.4g}" if r.size == 1 else f"{r.size} radii")
    n = d >> lv
    return (f"Level {lv} of {state.levels}: pairs of {pairs} -> {n} angle{'s' if n > 1 else ''} in {rng}; "
            f"left: {what} and {sum(a.size for a in state.angles)} angles ({state.n_numbers} numbers).")


class PolarTreeStepper:
    """The level shown by the tree stepper, moved by Next and Back.

    Examples
    --------
    >>> s = PolarTreeStepper()
    >>> s.next().radii[-1].size, s.next().radii[-1].size, s.back().level
    (4, 2, 1)
    """

    def __init__(self, x=None):
        self.x = np.array(TREE_EXAMPLE if x is None else x, dtype=np.float64)
        self._state = compute_polar_tree(self.x, 0)

    @property
    def state(self) -> PolarTreeState:
        return self._state

    @property
    def level(self) -> int:
        return self._state.level

    def _go(self, level):
        self._state = compute_polar_tree(self.x, min(max(level, 0), self._state.levels))
        return self._state

    def next(self) -> PolarTreeState:
        """One level up (stays at the top)."""
        return self._go(self.level + 1)

    def back(self) -> PolarTreeState:
        """One level down (stays at level 0)."""
        return self._go(self.level - 1)

    def reset(self, x=None) -> PolarTreeState:
        """Back to level 0, optionally with a new vector."""
        if x is not None:
            self.x = compute_polar_tree(x, 0).x
        return self._go(0)


# --------------------------------------------------------------------------- 2. the laws


def law_std(level) -> float:
    """Standard deviation of a level-``level`` angle (quadrature of the law; level 1: ``2 pi / sqrt 12``)."""
    law = polar_angle_law(level)
    if level == 1:
        return 2 * math.pi / math.sqrt(12.0)
    var = integrate.quad(lambda t: (t - math.pi / 4) ** 2 * law.pdf(t), 0.0, math.pi / 2,
                         points=[math.pi / 4], limit=200)[0]
    return math.sqrt(var)


@dataclass
class AngleHistogram:
    """The level-``level`` angles of rotated Gaussian vectors, and of outlier KV vectors before and after.

    Attributes
    ----------
    level, d, n : int
    edges : (bins + 1,) ndarray
        Histogram bins over the law's support.
    gaussian : (bins,) ndarray
        Density of the angles of ``n`` Gaussian vectors after the rotation (random directions).
    before, after : (bins,) ndarray
        Densities of the angles of ``n`` synthetic KV vectors (outlier channels), raw and rotated.
    grid, pdf : (m,) ndarray
        The exact law on a grid.
    ks_gaussian, ks_before, ks_after : float
        Kolmogorov-Smirnov distances of the pooled angles from the law.
    std_law, std_gaussian, std_after : float
        Spread of the law and of the rotated angles (root mean square distance from the centre,
        ``pi`` on level 1, ``pi/4`` above).
    """
    level: int
    d: int
    n: int
    edges: np.ndarray
    gaussian: np.ndarray
    before: np.ndarray
    after: np.ndarray
    grid: np.ndarray
    pdf: np.ndarray
    ks_gaussian: float
    ks_before: float
    ks_after: float
    std_law: float
    std_gaussian: float
    std_after: float


def compute_angle_histogram(level=2, d=128, n=2000, seed=0, bins=60) -> AngleHistogram:
    """Histograms of the level-``level`` angles against the exact law, after one randomized Hadamard.

    Three inputs of ``n`` vectors each: Gaussian vectors (rotated: random directions, for which the
    law is exact), and ``make_kv_vectors(n, d, seed=seed)`` (5 channels 20x larger) raw and rotated
    by ``RandomizedHadamard(d, seed)``. Every angle of the level is pooled.
    """
    if d < 2 or d & (d - 1):
        raise ValueError(f"d must be a power of two, got {d}")
    levels = d.bit_length() - 1
    if not 1 <= level <= levels:
        raise ValueError(f"level must be between 1 and log2(d) = {levels} for d = {d}, got {level}")
    law = polar_angle_law(level)
    rot = RandomizedHadamard(d, seed=seed)
    x = make_kv_vectors(n, d, seed=seed).astype(np.float64)
    g = np.random.default_rng([seed, 12]).standard_normal((n, d))
    raw = polar_transform(x, level).angles[-1].ravel()
    after = polar_transform(rot.forward(x), level).angles[-1].ravel()
    gauss = polar_transform(rot.forward(g), level).angles[-1].ravel()
    lo, hi = law.support
    edges = np.linspace(lo, hi, bins + 1)
    grid = np.linspace(lo, hi, 400)
    centre = math.pi if level == 1 else math.pi / 4

    def density(a):
        return np.histogram(a, edges, density=True)[0]

    def ks(a):
        return float(stats.kstest(a, law.cdf).statistic)

    def spread(a):
        return float(np.sqrt(np.mean((a - centre) ** 2)))

    return AngleHistogram(level, d, n, edges, density(gauss), density(raw), density(after), grid,
                          law.pdf(grid), ks(gauss), ks(raw), ks(after), law_std(level), spread(gauss),
                          spread(after))


@dataclass
class UnitVectorFacts:
    """What changes, and what does not, for a unit vector instead of a Gaussian one (section 3).

    Attributes
    ----------
    d, levels, n : int
    corr_sq, corr_sq_theory : float
        Correlation of ``u_i^2`` and ``u_j^2`` over the unit vectors, averaged over all pairs
        ``i != j``, and its exact value ``-1/(d-1)`` (the squares sum to 1).
    corr_sq_gauss : float
        The same for the Gaussian vectors (0 in theory).
    angle_max_diff : float
        Largest difference between an angle of ``g`` and the same angle of ``g / ||g||``.
    radius_sq : (n,) ndarray
        The first top radius squared of each unit vector.
    beta_a, beta_b : float
        Its law: ``Beta(2**(L-1), (d - 2**L) / 2)`` (a Dirichlet marginal).
    ks_radius : float
        KS p-value of ``radius_sq`` against that law.
    radii_sum : float
        Largest ``|sum_j r_j^2 - 1|`` (the radii split the unit norm).
    """
    d: int
    levels: int
    n: int
    corr_sq: float
    corr_sq_theory: float
    corr_sq_gauss: float
    angle_max_diff: float
    radius_sq: np.ndarray
    beta_a: float
    beta_b: float
    ks_radius: float
    radii_sum: float


def compute_unit_vector_facts(d=128, levels=4, n=20_000, seed=0) -> UnitVectorFacts:
    """Gaussian vectors ``g`` and their directions ``u = g / ||g||``: coordinates, angles, radii compared."""
    g = np.random.default_rng(seed).standard_normal((n, d))
    u = g / np.linalg.norm(g, axis=1, keepdims=True)
    pg, pu = polar_transform(g, levels), polar_transform(u, levels)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(pg.angles, pu.angles))
    r2 = pu.radii ** 2
    a, b = 2.0 ** (levels - 1), (d - 2 ** levels) / 2.0
    off = ~np.eye(d, dtype=bool)
    return UnitVectorFacts(
        d, levels, n, float(np.corrcoef(u.T ** 2)[off].mean()), -1.0 / (d - 1),
        float(np.corrcoef(g.T ** 2)[off].mean()), diff, r2[:, 0], a, b,
        float(stats.kstest(r2[:, 0], stats.beta(a, b).cdf).pvalue),
        float(np.max(np.abs(r2.sum(axis=1) - 1.0))))


# --------------------------------------------------------------------------- 4. budget and side information


def bit_budget(level_bits=(4, 2, 2, 2), d=128) -> list:
    """What one vector stores: a row per level (angles, bits each, bits), one for the radii, one total.

    Each row: ``what``, ``count`` (per vector), ``bits_each``, ``bits`` (per vector, whole bytes per
    level as stored), ``per_coordinate`` (``bits / d``).
    """
    pq = PolarQuant(d, level_bits)
    rows = []
    for level, (n, b, nbytes) in enumerate(zip(pq.n_angles, pq.level_bits, pq.n_bytes), start=1):
        rows.append(dict(what=f"level {level} angles", count=n, bits_each=b, bits=8 * nbytes,
                         per_coordinate=8 * nbytes / d))
    rows.append(dict(what="radii (float16)", count=pq.n_radii, bits_each=16, bits=16 * pq.n_radii,
                     per_coordinate=16 * pq.n_radii / d))
    total = sum(r["bits"] for r in rows)
    rows.append(dict(what="total", count=sum(r["count"] for r in rows), bits_each=None, bits=total,
                     per_coordinate=total / d))
    return rows


def side_information(d=128, block=32) -> list:
    """Side information (floats stored besides the codes) per coordinate, for each scheme of the course.

    Rows: ``method``, ``stores``, ``bits_per_coordinate`` (float16 side numbers).
    """
    full = d.bit_length() - 1
    return [
        dict(method="uniform per vector (lesson 01)", stores="lo and scale per vector",
             bits_per_coordinate=32 / d),
        dict(method=f"uniform per block of {block}", stores=f"lo and scale per {block} coordinates",
             bits_per_coordinate=32 / block),
        dict(method="TurboQuantMSE", stores="the norm per vector", bits_per_coordinate=16 / d),
        dict(method="PolarQuant, L = 4", stores="a radius per 16 coordinates", bits_per_coordinate=1.0),
        dict(method=f"PolarQuant, L = log2 d = {full}", stores="one radius (the norm) per vector",
             bits_per_coordinate=16 / d),
    ]


def angle_quantiles(level=2, d=128, n=2000, seed=0, q=(0.05, 0.25, 0.5, 0.75, 0.95)) -> dict:
    """Quantiles of the level-``level`` angles of rotated inputs of very different scales, and of the law.

    Inputs (each rotated by ``RandomizedHadamard(d, seed)``): Gaussian vectors, the same times 1000,
    times 0.001, and synthetic KV vectors with outlier channels. Returns name -> quantiles.
    """
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, d))
    rot = RandomizedHadamard(d, seed=seed)
    out = {}
    for name, x in (("Gaussian", g), ("Gaussian x 1000", 1000 * g), ("Gaussian x 0.001", 1e-3 * g),
                    ("outlier KV vectors", make_kv_vectors(n, d, seed=seed).astype(np.float64))):
        out[name] = np.quantile(polar_transform(rot.forward(x), level).angles[-1], q)
    law = polar_angle_law(level)
    grid = np.linspace(0, math.pi / 2, 20001)
    out["exact law"] = np.interp(q, law.cdf(grid), grid)
    return out


# --------------------------------------------------------------------------- 6. allocations


def allocation_table(levels, max_bits=6, d=None):
    """Every ``level_bits`` in ``1..max_bits`` per level: their bits per coordinate and predicted error.

    Returns ``(allocations, bpc, mse)``: ``allocations`` an ``(m, levels)`` int array, ``bpc`` the
    stored bits per coordinate at ``d`` (ideal, ``sum b_l 2**-l + 16 / 2**L``, when ``d`` is None)
    and ``mse`` :func:`~turboquant_lab.polar.polar_expected_mse`, both ``(m,)``.
    """
    choices = np.arange(1, max_bits + 1)
    grids = np.meshgrid(*([choices] * levels), indexing="ij")
    alloc = np.stack([g.ravel() for g in grids], axis=1)
    log_keep = np.zeros(alloc.shape[0])
    bpc = np.zeros(alloc.shape[0])
    for level in range(1, levels + 1):
        b = alloc[:, level - 1]
        keep = np.array([1 - angle_codebook(level, int(c)).mse / 2 for c in choices])
        log_keep += np.log(keep[b - 1])
        if d is None:
            bpc += b / 2.0 ** level
        else:
            bpc += 8 * (((d >> level) * b + 7) // 8) / d
    bpc += (16 / 2.0 ** levels) if d is None else 16 * (d >> levels) / d
    return alloc, bpc, 2 * (1 - np.exp(log_keep))


def best_allocations(d, levels=None, budgets=(2, 3, 4), max_bits=6) -> dict:
    """For each ``b`` in ``budgets``: the ``level_bits`` of least predicted error in TurboQuant's storage.

    TurboQuantMSE at ``b`` bits stores ``b + 16/d`` bits per coordinate; the search runs over
    ``1..max_bits`` bits per level with ``levels`` levels (default ``log2 d``: one radius) and the
    stored bits per coordinate at ``d``. Returns ``b -> tuple``.
    """
    levels = (d.bit_length() - 1) if levels is None else levels
    alloc, bpc, mse = allocation_table(levels, max_bits, d)
    out = {}
    for b in budgets:
        ok = bpc <= b + 16 / d + 1e-12
        i = np.flatnonzero(ok)[np.argmin(mse[ok])]
        out[b] = tuple(int(v) for v in alloc[i])
    return out


def frontier(levels, max_bits=6, d=None):
    """The lowest predicted error at each bits per coordinate over all allocations (the Pareto front).

    Returns ``(bpc, mse, allocations)`` sorted by ``bpc``, keeping an allocation only when it
    beats every cheaper one (:func:`allocation_table`; ``d=None``: the ideal count
    ``sum b_l 2**-l + 16 / 2**L``, as if all levels shared one bit stream).
    """
    alloc, bpc, mse = allocation_table(levels, max_bits, d)
    order = np.lexsort((mse, bpc))
    m = mse[order]
    before = np.concatenate(([np.inf], np.minimum.accumulate(m)[:-1]))
    keep = order[m < before]
    return bpc[keep], mse[keep], alloc[keep]


def full_depth_settings(d, budgets=(2, 3, 4)) -> tuple:
    """PolarQuant with ``log2 d`` levels (one radius): the best allocation in TurboQuant's storage."""
    best = best_allocations(d, None, budgets, max_bits=6 if d <= 128 else 5)
    return tuple(best[b] for b in budgets)


# --------------------------------------------------------------------------- 6. the comparison


@dataclass
class Codec:
    """A quantizer of the comparison: ``method`` ("turboquant" or "polarquant"), its setting and label."""
    method: str
    setting: object
    label: str
    quantizer: object

    @property
    def bits_per_coordinate(self) -> float:
        """Stored bits per coordinate (one vector encoded: codes, norms or radii, whole bytes)."""
        return float(self.quantizer.encode(np.ones(self.quantizer.d, np.float32)).bits_per_coordinate)

    @property
    def expected_mse(self) -> float:
        return float(self.quantizer.expected_mse)


def make_codec(method, setting, d, seed=0) -> Codec:
    """``TurboQuantMSE(d, setting)`` or ``PolarQuant(d, setting)``, with a label."""
    if method == "turboquant":
        return Codec(method, int(setting), f"TurboQuant {int(setting)} bits",
                     TurboQuantMSE(d, int(setting), seed=seed))
    if method == "polarquant":
        lb = tuple(int(b) for b in setting)
        return Codec(method, lb, "PolarQuant " + "".join(str(b) for b in lb), PolarQuant(d, lb, seed=seed))
    raise ValueError(f'method must be "turboquant" or "polarquant", got {method!r}')


def codec_list(d, seed=0, turbo_bits=TURBO_BITS, paper=PAPER_SETTINGS, full_depth=True) -> list:
    """The codecs of section 6: TurboQuantMSE at ``turbo_bits``, PolarQuant at the paper's settings
    and (``full_depth``) with ``log2 d`` levels at the allocations of :func:`full_depth_settings`."""
    codecs = [make_codec("turboquant", b, d, seed) for b in turbo_bits]
    codecs += [make_codec("polarquant", lb, d, seed) for lb in paper if d % (1 << len(lb)) == 0]
    if full_depth:
        codecs += [make_codec("polarquant", lb, d, seed) for lb in full_depth_settings(d)]
    return codecs


def _family(codec: Codec) -> str:
    if codec.method == "turboquant":
        return "TurboQuantMSE"
    return "PolarQuant, L = 4" if len(codec.setting) == 4 else "PolarQuant, L = log2 d"


def attention_errors(Qh, Kh, Vh, K_hat, V_hat, k=8) -> dict:
    """Attention with exact and with quantized keys and values, for every head at once.

    The quantities of :func:`~turboquant_lab.softmax_attention.attention_fidelity` (softmax
    temperature ``1/sqrt(d)``, no mask), computed batched over heads and averaged over all heads
    and queries: ``kl`` (``KL(p || p_hat)`` in nats), ``output_rel_error``
    (``||o - o_hat|| / ||o||``) and ``topk_agreement`` (share of the exact top-``k`` keys among the
    quantized top ``k``). Arrays are ``(h, m, d)`` queries and ``(h, n, d)`` keys and values.
    """
    Qh, Kh, Vh, K_hat, V_hat = (np.asarray(a, dtype=np.float64) for a in (Qh, Kh, Vh, K_hat, V_hat))
    tau = 1.0 / math.sqrt(Kh.shape[-1])

    def log_softmax(z):
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    logp = log_softmax(tau * (Qh @ Kh.transpose(0, 2, 1)))
    logp_hat = log_softmax(tau * (Qh @ K_hat.transpose(0, 2, 1)))
    p, p_hat = np.exp(logp), np.exp(logp_hat)
    kl = np.sum(p * (logp - logp_hat), axis=-1)
    o, o_hat = p @ Vh, p_hat @ V_hat
    o_norm = np.linalg.norm(o, axis=-1)
    rel = np.linalg.norm(o - o_hat, axis=-1) / np.where(o_norm > 0, o_norm, 1.0)
    n = p.shape[-1]
    if k >= n:
        agree = np.ones(p.shape[:-1])
    else:
        top = np.argpartition(-p, k - 1, axis=-1)[..., :k]
        top_hat = np.argpartition(-p_hat, k - 1, axis=-1)[..., :k]
        mask = np.zeros(p.shape, dtype=bool)
        np.put_along_axis(mask, top_hat, True, axis=-1)
        agree = np.take_along_axis(mask, top, axis=-1).sum(axis=-1) / k
    return dict(kl=float(max(kl.mean(), 0.0)), output_rel_error=float(rel.mean()),
                topk_agreement=float(agree.mean()))


def compare_codecs(Q, K, V, codecs, k=8) -> list:
    """Each codec on keys and values, against exact attention: storage, MSE, scores, attention.

    Parameters
    ----------
    Q, K, V : (..., m, d), (..., n, d), (..., n, d) float arrays
        Queries (exact), keys and values; the leading axes are heads.
    codecs : list of Codec

    Returns
    -------
    list of dict
        Per codec: ``label``, ``family``, ``method``, ``setting``, ``bits_per_coordinate``
        (stored), ``key_rel_mse`` (``sum ||k - k_hat||^2 / sum ||k||^2``), ``predicted_rel_mse``,
        ``score_rel_rmse`` (``sqrt(sum (s_hat - s)^2 / sum s^2)`` over every query-key pair),
        ``score_slope`` (``sum s_hat s / sum s^2``: 1 unbiased, below 1 shrunk),
        ``score_shrink`` (``|1 - score_slope|``), ``predicted_slope`` (``1 - D`` for TurboQuant,
        ``1 - D/2`` for PolarQuant, D the prediction), and :func:`attention_errors` with keys and
        values both quantized.

    Notes
    -----
    BLAS is held at one thread: these products are small, and on a loaded machine a threaded
    BLAS makes them ten times slower.
    """
    Q, K, V = (np.asarray(a, dtype=np.float32) for a in (Q, K, V))
    Qh, Kh, Vh = (a.reshape((-1,) + a.shape[-2:]) for a in (Q, K, V))
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        Q64 = Qh.astype(np.float64)
        s = Q64 @ Kh.astype(np.float64).transpose(0, 2, 1)
        for c in codecs:
            q = c.quantizer
            K_hat = q.decode(q.encode(Kh))
            V_hat = q.decode(q.encode(Vh))
            s_hat = Q64 @ K_hat.astype(np.float64).transpose(0, 2, 1)
            D = q.expected_mse
            rows.append(dict(
                label=c.label, family=_family(c), method=c.method, setting=c.setting,
                bits_per_coordinate=float(q.encode(Kh[:1, :1]).bits_per_coordinate),
                key_rel_mse=float(np.sum((Kh - K_hat) ** 2) / np.sum(Kh.astype(np.float64) ** 2)),
                predicted_rel_mse=float(D),
                score_rel_rmse=float(np.sqrt(np.sum((s_hat - s) ** 2) / np.sum(s ** 2))),
                score_slope=float(np.sum(s_hat * s) / np.sum(s * s)),
                score_shrink=float(abs(1.0 - np.sum(s_hat * s) / np.sum(s * s))),
                predicted_slope=float(1 - D if c.method == "turboquant" else 1 - D / 2),
                **attention_errors(Qh, Kh, Vh, K_hat, V_hat, k)))
    return rows


def unit_direction_rows(codecs, n=10_000, seed=2024) -> list:
    """Each codec on ``n`` random unit vectors: stored bits per coordinate, measured and predicted D."""
    d = codecs[0].quantizer.d
    g = np.random.default_rng(seed).standard_normal((n, d))
    u = (g / np.linalg.norm(g, axis=1, keepdims=True)).astype(np.float32)
    rows = []
    for c in codecs:
        q = c.quantizer
        enc = q.encode(u)
        err = np.sum((u.astype(np.float64) - q.decode(enc)) ** 2, axis=1)
        rows.append(dict(label=c.label, family=_family(c), method=c.method, setting=c.setting,
                         bits_per_coordinate=float(enc.bits_per_coordinate), mse=float(err.mean()),
                         mse_se=float(err.std(ddof=1) / math.sqrt(n)),
                         predicted_rel_mse=float(q.expected_mse)))
    return rows


def closing_table(n=10_000, seed=2024, d=128) -> list:
    """The closing note's numbers: D at ``d = 128`` on unit vectors, four PolarQuant settings, TurboQuantMSE.

    Print with ``python -c "from turboquant_lab.course.l12_polarquant import experiments as e;
    print(e.format_rows(e.closing_table()))"``.
    """
    settings = ((4, 2, 2, 2), (3, 2, 2, 2), (2, 2, 2, 2), (4, 3, 3, 3))
    codecs = [make_codec("polarquant", lb, d) for lb in settings]
    codecs += [make_codec("turboquant", b, d) for b in (2, 3, 4)]
    return unit_direction_rows(codecs, n, seed)


def format_rows(rows, columns=("label", "bits_per_coordinate", "mse", "predicted_rel_mse")) -> str:
    """A plain-text table of rows (dicts), numbers to 4 significant digits."""
    def fmt(v):
        if isinstance(v, str):
            return v
        if isinstance(v, (tuple, list)):
            return str(tuple(v))
        if isinstance(v, (int, np.integer)):
            return str(v)
        return f"{v:.4g}"

    cells = [list(columns)] + [[fmt(r[c]) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells)


def verdict(rows, metric="key_rel_mse") -> list:
    """For each PolarQuant row: TurboQuant's ``metric`` at the same stored bits per coordinate, and who wins.

    TurboQuant's value is interpolated log-linearly between its two neighbouring bit widths
    (errors fall by a roughly constant factor per bit). Returns dicts: ``label``, ``family``,
    ``bits_per_coordinate``, ``polar``, ``turbo``, ``ratio`` (polar / turbo), ``winner``; rows
    outside TurboQuant's range are left out.
    """
    turbo = sorted((r for r in rows if r["method"] == "turboquant"), key=lambda r: r["bits_per_coordinate"])
    tx = np.array([r["bits_per_coordinate"] for r in turbo])
    ty = np.log(np.array([r[metric] for r in turbo]))
    out = []
    for r in rows:
        if r["method"] != "polarquant" or not tx[0] <= r["bits_per_coordinate"] <= tx[-1]:
            continue
        t = float(np.exp(np.interp(r["bits_per_coordinate"], tx, ty)))
        out.append(dict(label=r["label"], family=r["family"], bits_per_coordinate=r["bits_per_coordinate"],
                        polar=r[metric], turbo=t, ratio=r[metric] / t,
                        winner="PolarQuant" if r[metric] < t else "TurboQuant"))
    return out


def bits_spent(level_bits=(4, 2, 2, 2), d=128, turbo_bits=3) -> list:
    """Where each codec's bits per coordinate go, and the error each part contributes (unit vectors).

    Rows: ``codec``, ``part``, ``bits_per_coordinate``, ``error`` (PolarQuant: ``D_l``, the level's
    mean squared chord; the radii and TurboQuant's norm: float16 rounding only, about 1e-7).
    """
    rows = []
    pq = PolarQuant(d, level_bits)
    name = "PolarQuant " + "".join(map(str, level_bits))
    for level, (cb, nb) in enumerate(zip(pq.codebooks, pq.n_bytes), start=1):
        rows.append(dict(codec=name, part=f"level {level} angles ({cb.bits} bits)",
                         bits_per_coordinate=8 * nb / d, error=cb.mse))
    rows.append(dict(codec=name, part="radii, float16", bits_per_coordinate=16 * pq.n_radii / d, error=0.0))
    tq = TurboQuantMSE(d, turbo_bits)
    rows.append(dict(codec=f"TurboQuant {turbo_bits} bits", part=f"coordinates ({turbo_bits} bits)",
                     bits_per_coordinate=turbo_bits * tq.d_pad / d, error=tq.expected_mse))
    rows.append(dict(codec=f"TurboQuant {turbo_bits} bits", part="norm, float16", bits_per_coordinate=16 / d,
                     error=0.0))
    return rows
