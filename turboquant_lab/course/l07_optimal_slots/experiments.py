"""Lesson 07 (optimal slots (Lloyd-Max)): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from turboquant_lab.codebooks import lloyd_max_codebook, lloyd_max_history, uniform_codebook
from turboquant_lab.validation import check_bits

__all__ = ["LloydMaxState", "compute_lloyd_max_state", "LloydMaxStepper"]


@dataclass(frozen=True, eq=False)
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


@functools.lru_cache(maxsize=64)
def _lloyd_history(bits: int, d, init: str, n_iter: int) -> tuple:

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
