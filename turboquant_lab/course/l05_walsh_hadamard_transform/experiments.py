"""Lesson 05 (the Walsh-Hadamard transform): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from turboquant_lab.validation import as_float_array, check_power_of_two
from turboquant_lab.walsh_hadamard import hadamard

__all__ = [
    "butterfly_pairs", "ButterflyState", "compute_butterfly", "butterfly_caption", "ButterflyStepper",
    "BUTTERFLY_INPUTS", "time_transforms",
]


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
    d = check_power_of_two(d, "d")
    n_stages = d.bit_length() - 1
    if not 0 <= int(stage) < n_stages:
        raise ValueError(f"stage must be between 0 and log2(d) - 1 = {n_stages - 1}, got {stage}")
    h = 1 << int(stage)
    return [(i, i + h) for start in range(0, d, 2 * h) for i in range(start, start + h)]


@dataclass(frozen=True)
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
    (the library's :func:`~turboquant_lab.walsh_hadamard.fwht_stages` is the oracle
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


def time_transforms(transforms, dims, batch=None, repeat=5, seed=0, threads=1, dense_up_to=4096):
    """Seconds per vector of a dense Hadamard product and of each transform in ``transforms``.

    Parameters
    ----------
    transforms : dict of name -> callable
        Each maps a float64 batch ``x`` of shape ``(n, d)`` to its orthonormal
        Walsh-Hadamard transform ``x @ hadamard(d).T / sqrt(d)`` (``my_fwht``,
        ``tql.fwht``, ...).
    dims : sequence of int
        Powers of two.
    batch : int or None
        Vectors per call, so that each call does enough work to be timed; None:
        ``max(64, 2**16 // d)`` (a 512 KiB float64 batch, so that small sizes
        do not time the call overhead).
    repeat : int
        The best of ``repeat`` calls is kept.
    seed : int
    threads : int or None
        BLAS threads during the timing; 1 by default, so that the figure
        compares algorithms on one core rather than thread scheduling on a
        busy machine (a multi-threaded BLAS on loaded cores can be 100x slower
        on small products). The batches are small enough (one block) that
        ``tql.fwht`` runs on one thread too. None leaves the thread count alone.
    dense_up_to : int
        The dense product ``x @ H.T`` (``H = hadamard(d) / sqrt(d)``, built
        before the clock starts) is timed up to this ``d`` (its matrix takes
        ``8 d**2`` bytes); NaN above.

    Returns
    -------
    dict with ``dims``, ``seconds`` (name -> float array of seconds per vector,
    ``"dense"`` first) and ``max_abs_diff`` (largest ``|result - dense|``, or
    against the first transform where the dense product is not timed: all compute
    the same thing). Wall-clock figures: print them only in a plot or on a line
    marked ``(timed)``.

    Examples
    --------
    >>> from turboquant_lab.walsh_hadamard import fwht
    >>> t = time_transforms({"fwht": fwht}, [8, 16], repeat=1)
    >>> sorted(t["seconds"]), t["max_abs_diff"] < 1e-12
    (['dense', 'fwht'], True)
    """
    limit = contextlib.nullcontext()
    if threads is not None:
        limit = threadpool_limits(limits=int(threads), user_api="blas")
    with limit:
        return _time_transforms(dict(transforms), dims, batch, repeat, seed, dense_up_to, time.perf_counter)


def _best_of(f, repeat, clock):
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = clock()
        result = f()
        best = min(best, clock() - t0)
    return best, result


def _time_transforms(transforms, dims, batch, repeat, seed, dense_up_to, clock):
    rng = np.random.default_rng(seed)
    seconds = {name: [] for name in ["dense", *transforms]}
    diff = 0.0
    for d in dims:
        d = check_power_of_two(d, "d")
        n = batch or max(64, (1 << 16) // d)
        x = rng.standard_normal((n, d))
        results = []
        if d <= dense_up_to:
            h = hadamard(d) / np.sqrt(d)
            t, y = _best_of(lambda: x @ h.T, repeat, clock)
            seconds["dense"].append(t / n)
            results.append(y)
        else:
            seconds["dense"].append(np.nan)
        for name, f in transforms.items():
            t, y = _best_of(lambda: f(x), repeat, clock)
            seconds[name].append(t / n)
            results.append(np.asarray(y))
        diff = max([diff] + [float(np.max(np.abs(r - results[0]))) for r in results[1:]])
    return {"dims": np.asarray(dims), "seconds": {k: np.asarray(v) for k, v in seconds.items()},
            "max_abs_diff": diff}
