"""Exercise checkers: run a learner's function, compare it with the library, say what is wrong.

Each exercise notebook (``exercises/NN_*.ipynb``) ends every exercise with a
call such as ``check_uniform_quantize(uniform_quantize)``. The checker calls
the learner's function on a few inputs, typical ones and edge cases (a
constant vector, ``d = 1``, a code that spans two bytes, ...), compares each
answer with the library (the oracle), and prints one short verdict:

* ``✔ <function>: passed.`` and what was checked;
* ``✘ <function>: not right yet.`` with the input that failed (written so that
  it can be pasted into a cell), the expected and the received value, and a
  hint; when the answer matches a typical mistake (``2**b`` levels where
  ``2**b - 1`` gaps are meant, a forgotten ``1/sqrt(d)``, the sign flips in
  the wrong order, ...) the hint names that mistake;
* ``… <function>: not attempted yet.`` while the function still raises the
  stub's ``NotImplementedError``.

A checker never raises: whatever the learner's code raises (or returns) is
caught and reported with its type and message, so an exercise notebook runs
top to bottom even before it is touched. Warnings from the learner's code
(a division by zero, ...) are silenced during the check; the verdict says
what went wrong instead. Inputs come from fixed seeds, so a verdict is the
same on every run.

Return value
------------
A checker prints its verdict and returns it as a :class:`Verdict`:
truthy when the exercise passed, with ``.status`` (``"passed"``,
``"failed"`` or ``"not attempted"``), ``.message`` (the printed text) and
``.hint``. Jupyter displays a ``Verdict`` as nothing (it has an empty
``_ipython_display_``), so the printed text is the cell's only output, with
or without a trailing semicolon; the tests use the returned object.

Examples
--------
>>> import numpy as np
>>> def levels(lo, hi, bits):
...     return lo + np.arange(2 ** bits) * (hi - lo) / (2 ** bits - 1)
>>> verdict = check_levels(levels)  # doctest: +ELLIPSIS
✔ levels: passed. ...
>>> bool(verdict), verdict.status
(True, 'passed')
"""
from __future__ import annotations

import functools
import math
import textwrap
import warnings
from dataclasses import dataclass
from importlib import import_module

import numpy as np

# The library's modules, the oracles. Not ``from . import hadamard``: the package
# re-exports the function ``hadamard``, which hides the submodule of that name.
codebooks, data, hadamard, packing, rotation, uniform = (
    import_module(f"{__package__}.{name}")
    for name in ("codebooks", "data", "hadamard", "packing", "rotation", "uniform"))

__all__ = [
    "Verdict", "PASSED", "FAILED", "NOT_ATTEMPTED",
    # lesson 01
    "check_levels", "check_uniform_quantize", "check_uniform_dequantize", "check_bits_per_value",
    # lesson 02
    "check_wasted_slots", "check_worst_case_ratio", "check_normal_mse",
    # lesson 03
    "check_max_over_mean", "check_haar_rotation", "check_rotation_errors",
    "check_fraction_positive",
    # lesson 04
    "check_random_unit_vectors", "check_empirical_sigma", "check_coordinate_pdf",
    "check_coordinate_kurtosis",
    # lesson 05
    "check_butterfly_stage", "check_fwht", "check_fwht_inplace", "check_sylvester",
    # lesson 06
    "check_spike_preimage", "check_rht_forward", "check_rht_inverse", "check_second_flip",
    # lesson 07
    "check_assign_cells", "check_lloyd_step", "check_fit_codebook", "check_uniform_codebook_mse",
    # lesson 08
    "check_pack3", "check_unpack3", "check_roundtrip",
]

PASSED = "passed"
FAILED = "failed"
NOT_ATTEMPTED = "not attempted"


# ======================================================================================
# The machinery: a verdict, the failure it carries, calling the learner's code safely
# ======================================================================================


@dataclass(frozen=True)
class Verdict:
    """What a checker found: ``status``, the printed ``message``, the ``hint`` alone.

    Truthy exactly when the exercise passed. Displays as nothing in Jupyter,
    because the checker has already printed the message.
    """

    name: str
    status: str
    message: str
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self):  # the message is already printed: show nothing more
        return None

    def __repr__(self) -> str:
        return f"Verdict(name={self.name!r}, status={self.status!r})"


class _NotAttempted(Exception):
    """The learner's function still raises the stub's NotImplementedError."""


class _Failure(Exception):
    """A failed case: what went wrong, on which input, expected vs got, and a hint."""

    def __init__(self, problem: str = "", *, case: str = "", expected=None, got=None,
                 hint: str = "", what: str = ""):
        super().__init__(problem)
        self.problem = problem
        self.case = case
        self.expected = expected
        self.got = got
        self.hint = hint
        self.what = what

    def render(self, name: str) -> str:
        lines = [f"✘ {name}: not right yet."]
        if self.case:
            lines.append(_field("input", _wrap(self.case)))
        if self.problem:
            lines.append(_field("problem", _wrap(self.problem)))
        what = f"{self.what} " if self.what else ""
        if self.expected is not None:
            lines.append(_field("expected", what + _fmt(self.expected)))
        if self.got is not None:
            lines.append(_field("got", what + _fmt(self.got)))
        if self.hint:
            lines.append(_field("hint", _wrap(self.hint)))
        return "\n".join(lines)


def _wrap(text: str) -> str:
    return textwrap.fill(str(text), width=86, break_long_words=False, break_on_hyphens=False)


def _field(label: str, text: str) -> str:
    pad = " " * 12
    return f"  {label + ':':<10}" + str(text).replace("\n", "\n" + pad)


def _fmt(value) -> str:
    """Short, stable text for a number, an array or anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, tuple) and all(isinstance(v, (int, float, np.number)) for v in value):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    if isinstance(value, (np.ndarray, list, tuple)):
        try:
            a = np.asarray(value)
        except Exception:  # ragged lists and the like
            a = None
        if a is not None and a.dtype.kind in "biuf":
            text = np.array2string(a, precision=4, threshold=12, edgeitems=3, separator=", ",
                                   suppress_small=True, max_line_width=90)
            if a.ndim >= 1 and a.size > 12:
                text += f"  (shape {a.shape})"
            return text
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _call(fn, *args, case: str = "", copy: bool = True, **kwargs):
    """Call the learner's ``fn`` (with copies of array arguments unless ``copy=False``).

    Exceptions become verdicts: the stub's NotImplementedError "not attempted",
    anything else a failure that names the exception.
    """
    if copy:
        args = tuple(np.array(a) if isinstance(a, np.ndarray) else a for a in args)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except NotImplementedError:
        raise _NotAttempted() from None
    except Exception as exc:  # anything the learner's code raises is reported, never raised
        raise _Failure(f"your function raised {type(exc).__name__}: {exc}", case=case,
                       hint=_hint_for_exception(exc)) from None


def _hint_for_exception(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, NameError):
        return ("a name is not defined: did you run the cells above (imports, earlier "
                "exercises) first?")
    if isinstance(exc, (IndexError,)) or "out of bounds" in text:
        return "an index runs past the end of an array: check the loop limits."
    if "broadcast" in text or "shapes" in text:
        return ("two arrays have shapes that do not fit together: print their .shape; "
                "a per-vector number needs [..., None] (or keepdims=True) to broadcast over d.")
    if isinstance(exc, (TypeError,)) and "argument" in text:
        return "check the function's signature: keep the parameters the exercise gives."
    return "read the message above, fix the line it points to and run both cells again."


def _checker(name: str):
    """Turn ``grader(*fns) -> summary`` into a checker that prints a verdict and never raises."""
    def decorate(grader):
        @functools.wraps(grader)
        def check(*fns):
            try:
                for fn in fns:
                    if not callable(fn):
                        raise _Failure(f"expected a function, got {type(fn).__name__}",
                                       hint=f"pass the function itself, without calling it: "
                                            f"{grader.__name__}(my_function), not "
                                            f"{grader.__name__}(my_function()).")
                summary = grader(*fns)
                verdict = Verdict(name, PASSED, f"✔ {name}: passed. {summary}")
            except _NotAttempted:
                verdict = Verdict(name, NOT_ATTEMPTED,
                                  f"… {name}: not attempted yet. Replace the line "
                                  f"`raise NotImplementedError(...)` with your code, run that "
                                  f"cell, then this one.")
            except _Failure as failure:
                verdict = Verdict(name, FAILED, failure.render(name), failure.hint)
            except Exception as exc:  # what the learner returned could not even be compared
                failure = _Failure(f"the check could not use what your function returned "
                                   f"({type(exc).__name__}: {exc})",
                                   hint="return what the docstring asks for: its type and shape.")
                verdict = Verdict(name, FAILED, failure.render(name), failure.hint)
            print(verdict.message)
            return verdict
        check.__name__ = grader.__name__
        return check
    return decorate


# --------------------------------------------------------------------------------------
# Comparison helpers: each raises _Failure with the case, expected, got and a hint
# --------------------------------------------------------------------------------------


def _array(got, case: str, what: str = "the result", shape=None, kind: str | None = None):
    """``got`` as an ndarray of the expected shape (and kind: "f" float, "i" integer), or fail."""
    if got is None:
        raise _Failure(f"your function returned None instead of {what}", case=case,
                       hint="did you forget the `return` line?")
    if isinstance(got, tuple) and shape is not None and len(shape) >= 1 and len(got) != shape[0]:
        raise _Failure(f"your function returned a tuple of {len(got)} items instead of {what}",
                       case=case, hint="return a single array.")
    try:
        a = np.asarray(got)
    except Exception:
        raise _Failure(f"{what} is not an array (got {type(got).__name__})", case=case,
                       hint="return a NumPy array.") from None
    if a.dtype.kind not in "biuf":
        raise _Failure(f"{what} should hold numbers, got dtype {a.dtype}", case=case,
                       hint="return a NumPy array of numbers.")
    if shape is not None and a.shape != tuple(shape):
        raise _Failure(f"{what} has shape {a.shape}, expected {tuple(shape)}", case=case,
                       hint="compare your loop limits or reshape with the expected shape.")
    if kind == "i" and a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            raise _Failure(f"{what} holds whole numbers but as floats ({a.dtype})", case=case,
                           hint="codes are integers: convert with .astype(np.uint8) "
                                "(or another integer dtype) before returning.")
        raise _Failure(f"{what} should be integers, got dtype {a.dtype}", case=case,
                       hint="codes are integers: round, then .astype(np.uint8).")
    return a


def _number(got, case: str, what: str = "the result") -> float:
    """``got`` as a Python float (a number or a 1-element array), or fail."""
    if got is None:
        raise _Failure(f"your function returned None instead of {what}", case=case,
                       hint="did you forget the `return` line?")
    try:
        a = np.asarray(got, dtype=np.float64)
    except Exception:
        raise _Failure(f"{what} should be a number, got {type(got).__name__}", case=case,
                       hint="return a single number (a float).") from None
    if a.size != 1:
        raise _Failure(f"{what} should be one number, got an array of shape {a.shape}",
                       case=case, hint="reduce it to one number (e.g. with .max() or .mean()).")
    return float(a.reshape(()))


def _close(a, b, rtol=1e-6, atol=1e-9) -> bool:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _first_hint(got, detectors, default: str) -> str:
    """The message of the first ``(buggy_value_or_predicate, message)`` that ``got`` matches."""
    for detector, message in detectors:
        try:
            hit = detector(got) if callable(detector) else _close(got, detector, 1e-5, 1e-8)
        except Exception:
            hit = False
        if hit:
            return message
    return default


def _expect(got, expected, case: str, *, what: str = "", rtol=1e-6, atol=1e-9,
            detectors=(), hint: str = "", problem: str = ""):
    """Fail unless ``got`` is close to ``expected``; pick the hint from the detectors."""
    if _close(got, expected, rtol, atol):
        return
    g = np.asarray(got, dtype=np.float64)
    if g.size and not np.all(np.isfinite(g)):
        problem = problem or "your result contains NaN or Inf"
    raise _Failure(problem, case=case, expected=expected, got=got, what=what,
                   hint=_first_hint(got, detectors, hint))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# ======================================================================================
# Lesson 01: naive quantization
# ======================================================================================


@_checker("levels")
def check_levels(levels):
    """Check ``levels(lo, hi, bits)``: the ``2**bits`` evenly spaced levels from lo to hi."""
    cases = [(-1.0, 1.0, 2), (0.0, 10.0, 3), (-3.0, 5.0, 1), (-0.5, 2.5, 4), (0.0, 1.0, 8),
             (2.0, 2.0, 2)]
    for lo, hi, bits in cases:
        case = f"lo = {lo}, hi = {hi}, bits = {bits}"
        expected = uniform.uniform_levels(lo, hi, bits)
        got = _array(_call(levels, lo, hi, bits, case=case), case, "the levels")
        n = 2 ** bits
        if got.shape != expected.shape:
            hint = {n - 1: f"{bits} bits give 2**{bits} = {n} levels (k = 0 .. {n - 1}), "
                           f"not 2**bits - 1: there are 2**bits - 1 gaps between them.",
                    n + 1: f"{bits} bits give 2**{bits} = {n} levels (k = 0 .. {n - 1}): "
                           f"range(2**bits) stops before 2**bits."}.get(
                got.size, f"return one level per code: 2**bits = {n} values.")
            raise _Failure(f"got {got.size} levels, expected {n}", case=case,
                           expected=expected, got=got, hint=hint)
        k = np.arange(n)
        _expect(got, expected, case, detectors=[
            (lo + k * (hi - lo) / n, "the top level must be hi: divide (hi - lo) by the "
                                     "number of gaps, 2**bits - 1, not by 2**bits."),
            (np.linspace(lo, hi, n)[::-1], "list the levels from lo up to hi (ascending)."),
        ], hint="level k is lo + k * (hi - lo) / (2**bits - 1) for k = 0 .. 2**bits - 1.")
    return "Checked 1 to 8 bits, negative ranges, and lo == hi."


def _quantize_cases():
    kv = data.make_kv_vectors(2, 64, seed=0)
    return [
        ("x = np.array([0.0, 0.2, 0.9, 3.0]), bits = 2", np.array([0.0, 0.2, 0.9, 3.0]), 2),
        ("x = np.array([-1.0, -0.4, 0.35, 1.0, 0.05]), bits = 1",
         np.array([-1.0, -0.4, 0.35, 1.0, 0.05]), 1),
        ("x = np.random.default_rng(0).standard_normal(16), bits = 3",
         _rng(0).standard_normal(16), 3),
        ("x = tql.make_kv_vectors(2, 64, seed=0)[0], bits = 2", kv[0].astype(np.float64), 2),
        ("x = tql.make_kv_vectors(2, 64, seed=0)[1], bits = 8", kv[1].astype(np.float64), 8),
        ("x = np.full(5, 1.5)  (a constant vector), bits = 3", np.full(5, 1.5), 3),
    ]


@_checker("uniform_quantize")
def check_uniform_quantize(uniform_quantize):
    """Check ``uniform_quantize(x, bits) -> (codes, lo, scale)`` against the library."""
    for case, x, bits in _quantize_cases():
        q = uniform.uniform_quantize(x, bits)
        out = _call(uniform_quantize, x, bits, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise _Failure("your function should return three things: codes, lo, scale",
                           case=case, got=out, hint="end with `return codes, lo, scale`.")
        codes, lo, scale = out
        constant = "constant" in case
        lo_v = _number(lo, case, "lo")
        scale_v = _number(scale, case, "scale")
        if not _close(lo_v, q.lo):
            raise _Failure("lo is wrong", case=case, expected=float(q.lo), got=lo_v,
                           hint="lo is the smallest coordinate, x.min().")
        n = 2 ** bits
        if not _close(scale_v, q.scale):
            hint = _first_hint(scale_v, [
                ((x.max() - x.min()) / n, f"the slot width divides the range by the number of "
                                          f"gaps, 2**bits - 1 = {n - 1}, not by 2**bits = {n}."),
                (x.max() - x.min(), "scale is the slot width: (max - min) / (2**bits - 1)."),
            ], "scale = (x.max() - x.min()) / (2**bits - 1).")
            if constant and not np.isfinite(scale_v):
                hint = "a constant vector has max == min, so scale must be 0 (not NaN)."
            raise _Failure("scale is wrong", case=case, expected=float(q.scale), got=scale_v,
                           hint=hint)
        if constant:
            g = np.asarray(codes)
            if g.shape != x.shape or g.dtype.kind not in "iu" or np.any(g != 0):
                raise _Failure("a constant vector should get codes that are all 0", case=case,
                               expected=q.codes, got=codes,
                               hint="a constant vector has max == min, so scale is 0 and "
                                    "(x - lo) / scale is 0 / 0: divide by 1 instead when scale "
                                    "is 0 (every code is then 0).")
        g = _array(codes, case, "codes", shape=x.shape, kind="i")
        if not np.array_equal(g.astype(np.int64), q.codes.astype(np.int64)):
            exact = (x - x.min()) / q.scale
            differ = int(np.sum(g != q.codes))
            hint = _first_hint(g, [
                (np.floor(exact), "round to the nearest level with np.rint (or np.round), "
                                  "don't truncate with np.floor or .astype(int) alone."),
                (np.rint((x - x.min()) / ((x.max() - x.min()) / n)),
                 f"codes come from the slot width (max - min) / (2**bits - 1); with 2**bits "
                 f"the top value lands on code {n}, which does not exist."),
                (lambda a: a.max() > n - 1, f"codes must lie in 0 .. 2**bits - 1 = {n - 1}."),
            ], "code_i = round((x_i - lo) / scale).")
            raise _Failure(f"codes differ at {differ} of {x.size} positions", case=case,
                           expected=q.codes, got=g, hint=hint)
    return ("Codes, lo and scale match the library for 1, 2, 3 and 8 bits, an outlier "
            "vector and a constant vector.")


@_checker("uniform_dequantize")
def check_uniform_dequantize(uniform_dequantize):
    """Check ``uniform_dequantize(codes, lo, scale) -> x_hat`` against the library."""
    for case, x, bits in _quantize_cases():
        q = uniform.uniform_quantize(x, bits)
        expected = uniform.uniform_dequantize(q)
        case = f"codes, lo, scale from uniform_quantize({case.replace(', bits = ', ', bits=')})"
        got = _array(_call(uniform_dequantize, q.codes.copy(), float(q.lo), float(q.scale),
                           case=case), case, "x_hat", shape=x.shape)
        _expect(got, expected, case, what="x_hat", detectors=[
            (q.codes * q.scale, "add lo back: the levels start at lo, x_hat = lo + codes * scale."),
            (q.lo + q.codes / q.scale if q.scale else np.nan,
             "multiply the codes by scale (the slot width), don't divide."),
            (q.lo + (q.codes.astype(np.int64) + 0.5) * q.scale,
             "codes mark the levels themselves, not the middle of a slot: "
             "x_hat = lo + codes * scale."),
        ], hint="x_hat = lo + codes * scale (convert codes to float first).")
        if np.max(np.abs(got - x)) > q.scale / 2 + 1e-9:
            raise _Failure("an error is larger than half a slot", case=case,
                           hint="each x_hat_i should lie within scale / 2 of x_i.")
    return "x_hat matches the library on 6 vectors, and every error is at most scale / 2."


@_checker("bits_per_value")
def check_bits_per_value(bits_per_value):
    """Check ``bits_per_value(d, bits, side_bits=32)``: bits per value, lo and scale included."""
    cases = [(64, 2, 32), (64, 4, 32), (128, 3, 32), (4096, 2, 32), (16, 8, 32), (64, 2, 16),
             (1, 1, 32)]
    for d, bits, side in cases:
        case = f"d = {d}, bits = {bits}, side_bits = {side}"
        q = uniform.uniform_quantize(_rng(d).standard_normal(d) if d > 1 else np.array([1.0]), bits)
        expected = q.bits_per_coordinate(side_bits=side)
        got = _number(_call(bits_per_value, d, bits, side_bits=side, case=case), case)
        _expect(got, expected, case, detectors=[
            (bits + side / d, "each vector stores two extra numbers, lo and scale: 2 * side_bits."),
            (bits + 2 * side, "the side numbers are shared by the d coordinates of a vector: "
                              "divide 2 * side_bits by d."),
            (float(bits), "count the per-vector numbers lo and scale too."),
            ((bits * d + 2 * side), "that is the total per vector: divide by d for the "
                                    "figure per coordinate."),
        ], hint="bits per coordinate = bits + 2 * side_bits / d.")
    return "Checked d from 1 to 4096, 1 to 8 bits, float32 and float16 side numbers."


# ======================================================================================
# Lesson 02: the outlier problem
# ======================================================================================


@_checker("wasted_slots")
def check_wasted_slots(wasted_slots):
    """Check ``wasted_slots(x, bits)``: levels of the min-max quantizer that no coordinate uses."""
    kv = data.make_kv_vectors(3, 64, seed=0).astype(np.float64)
    cases = [
        ("x = np.array([0.0, 0.1, 0.2, 10.0]), bits = 2", np.array([0.0, 0.1, 0.2, 10.0]), 2),
        ("x = tql.make_kv_vectors(3, 64, seed=0)[0], bits = 2", kv[0], 2),
        ("x = tql.make_kv_vectors(3, 64, seed=0)[1], bits = 3", kv[1], 3),
        ("x = tql.make_kv_vectors(3, 64, seed=0)[2], bits = 4", kv[2], 4),
        ("x = np.random.default_rng(2).standard_normal(64), bits = 2",
         _rng(2).standard_normal(64), 2),
        ("x = np.full(8, -0.5)  (a constant vector), bits = 3", np.full(8, -0.5), 3),
    ]
    for case, x, bits in cases:
        expected = int(uniform.quant_stats(x, bits).wasted_slots)
        got = _number(_call(wasted_slots, x, bits, case=case), case)
        n = 2 ** bits
        _expect(got, expected, case, detectors=[
            (n - expected, "you counted the levels that are used; wasted = 2**bits - used."),
            (expected - 1, f"there are 2**bits = {n} levels, not 2**bits - 1."),
            (expected + 1, f"there are 2**bits = {n} levels (codes 0 .. {n - 1}), "
                           f"not 2**bits + 1."),
        ], hint="quantize x, count the distinct codes (np.unique), subtract from 2**bits.")
    return "Checked 2, 3 and 4 bits, outlier vectors, a Gaussian vector and a constant vector."


@_checker("worst_case_ratio")
def check_worst_case_ratio(worst_case_ratio):
    """Check ``worst_case_ratio(x, bits)``: max over a batch of ``|x - x_hat| / scale`` (<= 0.5)."""
    cases = [
        ("x = tql.make_kv_vectors(200, 64, seed=1), bits = 2",
         data.make_kv_vectors(200, 64, seed=1).astype(np.float64), 2),
        ("x = tql.make_kv_vectors(200, 64, seed=2), bits = 3",
         data.make_kv_vectors(200, 64, seed=2).astype(np.float64), 3),
        ("x = np.random.default_rng(3).standard_normal((100, 32)), bits = 4",
         _rng(3).standard_normal((100, 32)), 4),
    ]
    for case, x, bits in cases:
        q = uniform.uniform_quantize(x, bits)
        err = np.abs(x - uniform.uniform_dequantize(q))
        expected = float(np.max(err / q.scale[:, None]))
        got = _number(_call(worst_case_ratio, x, bits, case=case), case)
        _expect(got, expected, case, rtol=1e-6, detectors=[
            (float(np.max(err) / np.max(q.scale)), "divide each vector's errors by its own "
                                                   "scale: err / scale[:, None]."),
            (float(np.mean(err / q.scale[:, None])), "the worst case is the max, not the mean."),
            (lambda g: g > 0.5 + 1e-9, "rounding to the nearest level is never more than half a "
                                       "slot off: check your reconstruction (round, not floor)."),
        ], hint="ratio = max over vectors and coordinates of |x - x_hat| / scale of that vector.")
    return ("Matches the library on three batches (2, 3, 4 bits); the worst case stays below "
            "0.5 x scale.")


@_checker("normal_mse")
def check_normal_mse(normal_mse):
    """Check ``normal_mse(x, bits, outlier_channels)``: MSE over the normal channels only."""
    cases = []
    for n_out, seed, bits in [(5, 0, 2), (5, 0, 4), (3, 4, 3), (0, 1, 3)]:
        x = data.make_kv_vectors(100, 64, n_outliers=n_out, seed=seed).astype(np.float64)
        ch = data.kv_outlier_channels(64, n_outliers=n_out, seed=seed)
        case = (f"x = tql.make_kv_vectors(100, 64, n_outliers={n_out}, seed={seed}), "
                f"bits = {bits}, outlier_channels = "
                f"tql.kv_outlier_channels(64, n_outliers={n_out}, seed={seed})")
        cases.append((case, x, bits, ch))
    for case, x, bits, ch in cases:
        sq = (x - uniform.uniform_dequantize(uniform.uniform_quantize(x, bits))) ** 2
        mask = np.ones(x.shape[-1], dtype=bool)
        mask[ch] = False
        expected = float(sq[:, mask].mean())
        got = _number(_call(normal_mse, x, bits, ch.copy(), case=case), case)
        _expect(got, expected, case, rtol=1e-6, detectors=[
            (float(sq.mean()), "average only over the normal channels: drop the outlier "
                               "channels with a boolean mask (mask[outlier_channels] = False)."),
            (float(sq[:, ~mask].mean()) if (~mask).any() else np.nan,
             "that is the MSE of the outlier channels; keep the others."),
            (float(np.sqrt(sq[:, mask].mean())), "MSE is the mean of the squared errors, without "
                                                 "a square root."),
            (float(np.abs(np.sqrt(sq[:, mask])).mean()), "square the errors before averaging."),
        ], hint="quantize whole vectors, then average (x - x_hat)**2 over the normal channels.")
    return "Checked 2 to 4 bits, 0, 3 and 5 outlier channels."


# ======================================================================================
# Lesson 03: rotate first
# ======================================================================================


@_checker("max_over_mean")
def check_max_over_mean(max_over_mean):
    """Check ``max_over_mean(x)``: ``max |x_i| / mean |x_i|`` of one vector."""
    kv = data.make_kv_vectors(1, 64, seed=0)[0].astype(np.float64)
    cases = [
        ("x = np.array([1.0, -3.0, 2.0, 0.5])", np.array([1.0, -3.0, 2.0, 0.5])),
        ("x = tql.make_kv_vectors(1, 64, seed=0)[0]", kv),
        ("x = np.random.default_rng(5).standard_normal(128)", _rng(5).standard_normal(128)),
        ("x = np.full(16, -2.0)", np.full(16, -2.0)),
    ]
    for case, x in cases:
        a = np.abs(x)
        expected = float(a.max() / a.mean())
        got = _number(_call(max_over_mean, x, case=case), case)
        _expect(got, expected, case, detectors=[
            (float(x.max() / x.mean()), "use magnitudes: np.abs(x).max() / np.abs(x).mean()."),
            (float(a.max() / abs(x.mean())), "take the mean of |x_i|, not |mean of x_i|."),
            (float(a.mean() / a.max()), "it is max over mean, not mean over max."),
        ], hint="ratio = np.abs(x).max() / np.abs(x).mean().")
    return "Checked a small vector, an outlier vector, a Gaussian vector and a constant one."


@_checker("haar_rotation")
def check_haar_rotation(haar_rotation):
    """Check ``haar_rotation(d, seed)``: QR of a Gaussian matrix with the sign fix."""
    for d, seed in [(1, 0), (2, 1), (5, 3), (16, 0), (64, 7)]:
        case = f"d = {d}, seed = {seed}"
        expected = rotation.random_orthogonal(d, seed=seed)
        got = _array(_call(haar_rotation, d, seed, case=case), case, "Q", shape=(d, d))
        if not _close(got @ got.T, np.eye(d), 1e-8, 1e-8):
            raise _Failure("Q is not orthogonal: Q @ Q.T is not the identity", case=case,
                           expected=np.eye(d), got=got @ got.T,
                           hint="return the Q factor of np.linalg.qr(G), not G or R.")
        g = _rng(seed).standard_normal((d, d))
        q, r = np.linalg.qr(g)
        s = np.sign(np.diag(r))
        s[s == 0] = 1.0
        _expect(got, expected, case, what="Q", rtol=1e-7, atol=1e-9, detectors=[
            (q, "that is QR without the sign fix: multiply column j of Q by sign(R[j, j]), "
                "q * np.sign(np.diag(r))."),
            (s[:, None] * q, "multiply the columns of Q by the signs (q * s), not its rows "
                             "(s[:, None] * q)."),
            ((q * s).T, "return Q itself, not its transpose."),
            (lambda a: np.allclose(np.abs(a), np.abs(expected)),
             "right up to signs: multiply column j of Q by sign(R[j, j]) exactly once."),
        ], hint="draw G = np.random.default_rng(seed).standard_normal((d, d)), so that "
                "the same seed gives the library's matrix.")
    return "Orthogonal, and equal to tql.random_orthogonal for d = 1, 2, 5, 16, 64."


def _rotation_oracle(q, x, y):
    rx, ry = x @ q.T, y @ q.T
    norm_err = np.max(np.abs(np.linalg.norm(rx, axis=-1) - np.linalg.norm(x, axis=-1)))
    dot_err = np.max(np.abs(np.sum(rx * ry, axis=-1) - np.sum(x * y, axis=-1)))
    inv_err = np.max(np.abs(rx @ q - x))
    return float(norm_err), float(dot_err), float(inv_err)


@_checker("rotation_errors")
def check_rotation_errors(rotation_errors):
    """Check ``rotation_errors(Q, x, y) -> (norm_err, dot_err, inverse_err)``."""
    x = data.make_kv_vectors(6, 16, seed=0).astype(np.float64)
    y = data.make_kv_vectors(6, 16, seed=1).astype(np.float64)
    q = rotation.random_orthogonal(16, seed=0)
    stretch = q * np.linspace(0.8, 1.3, 16)  # not orthogonal: columns of unequal length
    shear = np.eye(16) + 0.3 * np.triu(_rng(4).standard_normal((16, 16)), 1)
    cases = [
        ("Q = tql.random_orthogonal(16, seed=0), x = tql.make_kv_vectors(6, 16, seed=0), "
         "y = tql.make_kv_vectors(6, 16, seed=1)", q, True),
        ("Q = tql.random_orthogonal(16, seed=0) * np.linspace(0.8, 1.3, 16) (not orthogonal), "
         "same x, y", stretch, False),
        ("Q = np.eye(16) + 0.3 * np.triu(np.random.default_rng(4).standard_normal((16, 16)), 1) "
         "(not orthogonal), same x, y", shear, False),
    ]
    for case, m, orthogonal in cases:
        expected = _rotation_oracle(m, x, y)
        out = _call(rotation_errors, m.copy(), x, y, case=case)
        if not isinstance(out, (tuple, list, np.ndarray)) or len(out) != 3:
            raise _Failure("return three numbers: (norm_err, dot_err, inverse_err)", case=case,
                           got=out, hint="end with `return norm_err, dot_err, inverse_err`.")
        got = tuple(_number(v, case, "each error") for v in out)
        if orthogonal:
            if max(got) > 1e-9:
                names = ("norm_err", "dot_err", "inverse_err")
                worst = names[int(np.argmax(got))]
                hint = {
                    "inverse_err": "undo the rotation with the transpose: for rows, "
                                   "x_back = (x @ Q.T) @ Q.",
                    "norm_err": "compare ||x @ Q.T|| with ||x|| row by row (axis=-1).",
                    "dot_err": "compare the dot product of each rotated pair with that of the "
                               "original pair, row by row: np.sum(a * b, axis=-1).",
                }[worst]
                raise _Failure(f"for an orthogonal Q all three errors are ~1e-15, but "
                               f"{worst} is not", case=case, expected=expected, got=got,
                               hint=hint)
            continue
        _expect(got, expected, case, rtol=1e-6, atol=1e-9, detectors=[
            (_rotation_oracle(m.T, x, y), "rotate the rows with x @ Q.T (that is Q x for each "
                                          "row taken as a column vector), undo with @ Q."),
            (lambda g: _close(g[0], np.max(np.abs(np.sum((x @ m.T) ** 2, -1)
                                                  - np.sum(x ** 2, -1)))),
             "compare lengths ||Qx|| and ||x|| (np.linalg.norm), not squared lengths."),
            (lambda g: _close(g[2], np.max(np.abs(x @ m.T @ np.linalg.inv(m).T - x)), 1e-6, 1e-6),
             "undo with the transpose Q.T, not with np.linalg.inv(Q): the point is that the "
             "transpose is the inverse only for a rotation."),
        ], hint="the three numbers, in this order, are max |‖Qx‖ - ‖x‖|, "
                "max |(Qx)·(Qy) - x·y| and max |Q.T (Q x) - x| over the rows.")
    return ("All three errors vanish for a rotation and match the library's definitions for "
            "two matrices that are not rotations.")


def _fraction_oracle(n_samples, d, seed, sign_fix):
    rng = _rng(seed)
    hits = 0
    for _ in range(n_samples):
        q, r = np.linalg.qr(rng.standard_normal((d, d)))
        if sign_fix:
            s = np.sign(np.diag(r))
            s[s == 0] = 1.0
            q = q * s
        hits += q[0, 0] > 0
    return hits / n_samples


@_checker("fraction_positive_q00")
def check_fraction_positive(fraction_positive_q00):
    """Check ``fraction_positive_q00(n_samples, d, seed, sign_fix)``: how often ``Q[0, 0] > 0``."""
    for n_samples, d, seed in [(400, 8, 0), (400, 2, 1), (200, 32, 2)]:
        for fix in (True, False):
            case = f"n_samples = {n_samples}, d = {d}, seed = {seed}, sign_fix = {fix}"
            expected = _fraction_oracle(n_samples, d, seed, fix)
            got = _number(_call(fraction_positive_q00, n_samples, d, seed, fix, case=case), case)
            if abs(got - expected) <= 0.1:  # another draw order is fine: same law
                continue
            hint = _first_hint(got, [
                (lambda g: g > 1, "return a fraction between 0 and 1: count / n_samples."),
                (lambda g: fix and (g < 0.1 or g > 0.9),
                 "with the sign fix Q[0, 0] is positive about half the time: multiply column j "
                 "of Q by sign(R[j, j]) before reading Q[0, 0]."),
                (lambda g: not fix and 0.3 < g < 0.7,
                 "without the fix, use np.linalg.qr's Q exactly as it comes out."),
            ], "draw a new Gaussian matrix for every sample from one "
               "rng = np.random.default_rng(seed).")
            raise _Failure(problem="the fraction is off by more than the sampling noise (0.1)",
                           case=case, expected=expected, got=got, hint=hint)
    return ("Matches the library's draws: with the sign fix Q[0, 0] > 0 about half the time, "
            "without it (np.linalg.qr's Q as it comes) almost never.")


# ======================================================================================
# Lesson 04: the distribution after rotation
# ======================================================================================


@_checker("random_unit_vectors")
def check_random_unit_vectors(random_unit_vectors):
    """Check ``random_unit_vectors(n, d, seed)``: uniform directions (normalised Gaussians)."""
    case = "n = 5, d = 3, seed = 0"
    u = _array(_call(random_unit_vectors, 5, 3, 0, case=case), case, "the vectors", shape=(5, 3))
    norms = np.linalg.norm(u, axis=-1)
    if not _close(norms, np.ones(5), 1e-6, 1e-6):
        hint = ("divide each row by its own length: x / np.linalg.norm(x, axis=-1, keepdims=True)."
                if np.ptp(norms) > 1e-6 else "divide by the norm, not by the squared norm.")
        raise _Failure("the rows do not have length 1", case=case, expected=np.ones(5),
                       got=norms, what="row norms", hint=hint)
    again = _array(_call(random_unit_vectors, 5, 3, 0, case=case), case, "the vectors")
    other = _array(_call(random_unit_vectors, 5, 3, 1, case="n = 5, d = 3, seed = 1"),
                   "n = 5, d = 3, seed = 1", "the vectors")
    if not np.array_equal(u, again):
        raise _Failure("two calls with the same seed gave different vectors", case=case,
                       hint="draw from rng = np.random.default_rng(seed), not from np.random.*.")
    if np.array_equal(u, other):
        raise _Failure("seeds 0 and 1 gave the same vectors", case=case,
                       hint="pass the seed to np.random.default_rng(seed).")
    case = "n = 4000, d = 2, seed = 1"
    u = _array(_call(random_unit_vectors, 4000, 2, 1, case=case), case, "the vectors",
               shape=(4000, 2))
    theta = np.arctan2(u[:, 1], u[:, 0])
    bias = float(np.mean(np.cos(4 * theta)))  # 0 for uniform angles; < 0 for a cube
    if abs(bias) > 0.06:
        raise _Failure("in d = 2 the directions are not uniform on the circle", case=case,
                       what="mean of cos(4 * angle)", expected=0.0, got=bias,
                       hint="normalising uniform samples from a cube over-weights its corners "
                            "(the diagonals): normalise Gaussian samples (rng.standard_normal).")
    case = "n = 3000, d = 16, seed = 2"
    u = _array(_call(random_unit_vectors, 3000, 16, 2, case=case), case, "the vectors",
               shape=(3000, 16))
    var = u.var(axis=0)
    if np.max(np.abs(var * 16 - 1)) > 0.15:
        raise _Failure("the coordinates do not have variance 1/d", case=case,
                       expected=np.full(16, 1 / 16), got=var, what="variance per coordinate",
                       hint="every coordinate of a uniform unit vector has variance 1/d: draw "
                            "all n vectors independently (shape (n, d)).")
    return "Unit length, reproducible per seed, uniform angles in d = 2, variance 1/d in d = 16."


@_checker("empirical_sigma")
def check_empirical_sigma(empirical_sigma):
    """Check ``empirical_sigma(x, n_rotations, seed)``: std of ``(Q u)[0]`` over Haar rotations."""
    kv = data.make_kv_vectors(1, 64, seed=0)[0].astype(np.float64)
    e0 = np.zeros(32)
    e0[0] = 1.0
    cases = [("x = np.eye(32)[0]  (a spike), n_rotations = 400, seed = 0", e0, 400, 0),
             ("x = tql.make_kv_vectors(1, 64, seed=0)[0], n_rotations = 400, seed = 1", kv, 400, 1),
             ("x = np.ones(16), n_rotations = 400, seed = 2", np.ones(16), 400, 2)]
    for case, x, n, seed in cases:
        d = x.size
        target = 1 / math.sqrt(d)
        got = _number(_call(empirical_sigma, x, n, seed, case=case), case)
        if abs(got / target - 1) <= 0.15:  # 400 samples: ~3.5% noise
            continue
        norm = float(np.linalg.norm(x))
        hint = _first_hint(got, [
            (lambda g: g < 1e-6, "draw a new rotation for each sample (e.g. pass one "
                                 "rng = np.random.default_rng(seed) to tql.random_orthogonal)."),
            (lambda g: abs(g / (target * norm) - 1) < 0.15 and norm != 1,
             "make x a unit vector first: u = x / np.linalg.norm(x)."),
            (lambda g: abs(g / target ** 2 - 1) < 0.15, "that is the variance; sigma is its "
                                                       "square root."),
        ], "collect (Q @ u)[0] for n_rotations Haar rotations Q and return np.std of them.")
        raise _Failure("sigma is far from 1/sqrt(d)", case=case, expected=target, got=got,
                       hint=hint)
    return ("sigma is within sampling noise of 1/sqrt(d) for a spike, an outlier vector and a "
            "flat one.")


@_checker("coordinate_pdf")
def check_coordinate_pdf(coordinate_pdf):
    """Check ``coordinate_pdf(x, d)``: the density of a coordinate of a uniform unit vector."""
    for d in (2, 3, 4, 16, 128):
        grid = np.linspace(-0.95, 0.95, 39) if d < 32 else np.linspace(-0.4, 0.4, 41)
        case = f"x = np.linspace({grid[0]}, {grid[-1]}, {grid.size}), d = {d}"
        expected = codebooks.unit_coordinate_pdf(grid, d)
        got = _array(_call(coordinate_pdf, grid.copy(), d, case=case), case, "the density",
                     shape=grid.shape)
        ratio = got / expected
        _expect(got, expected, case, rtol=1e-6, atol=1e-9, detectors=[
            (lambda g: np.all(np.isfinite(ratio)) and np.ptp(ratio) < 1e-6 * np.abs(ratio).max(),
             "right shape, wrong area: divide by the normalising constant "
             "B(1/2, (d - 1)/2) (scipy.special.beta)."),
            ((1 - grid ** 2) ** ((d - 1) / 2) / _beta(d),
             "the exponent is (d - 3) / 2, not (d - 1) / 2."),
            (np.sqrt(d / (2 * np.pi)) * np.exp(-d * grid ** 2 / 2),
             "that is the Gaussian N(0, 1/d) approximation; the exact law is "
             "(1 - x**2)**((d - 3)/2) / B(1/2, (d - 1)/2)."),
        ], hint="f_d(x) = (1 - x**2)**((d - 3) / 2) / B(1/2, (d - 1) / 2) on [-1, 1].")
    return "Matches tql.unit_coordinate_pdf for d = 2 (arcsine), 3 (flat), 4, 16 and 128."


def _beta(d):
    from scipy.special import beta

    return beta(0.5, (d - 1) / 2)


@_checker("coordinate_kurtosis")
def check_coordinate_kurtosis(coordinate_kurtosis):
    """Check ``coordinate_kurtosis(d, n, seed)``: ``E[u^4] / E[u^2]^2`` of uniform unit vectors."""
    for d, n, seed in [(4, 20000, 0), (16, 10000, 1), (64, 4000, 2)]:
        case = f"d = {d}, n = {n}, seed = {seed}"
        exact = 3 * d / (d + 2)
        got = _number(_call(coordinate_kurtosis, d, n, seed, case=case), case)
        if abs(got - exact) <= 0.08:
            continue
        hint = _first_hint(got, [
            (lambda g: abs(g - (exact - 3)) <= 0.08,
             "that is the excess kurtosis (minus 3): return E[u**4] / E[u**2]**2 "
             "(scipy.stats.kurtosis(..., fisher=False))."),
            (lambda g: abs(g - 3) <= 0.08, "3 is the Gaussian value: normalise each vector to "
                                           "unit length before measuring."),
            (lambda g: abs(g - 3 / (d * (d + 2))) < 0.2 * 3 / (d * (d + 2)),
             "that is E[u**4] alone: divide by E[u**2]**2."),
        ], "pool all coordinates of n uniform unit vectors and return mean(u**4) / mean(u**2)**2.")
        raise _Failure("far from the exact 3d/(d+2)", case=case, expected=exact, got=got,
                       hint=hint)
    return "Within sampling noise of 3d/(d+2) for d = 4, 16 and 64."


# ======================================================================================
# Lesson 05: the Walsh-Hadamard transform
# ======================================================================================


def _stage_variants(x, h):
    """Typical wrong butterflies: (b - a) below; pairs (2i, 2i+1) whatever h is."""
    d = x.size
    p = x.reshape(d // (2 * h), 2, h)
    swapped = np.stack([p[:, 0] + p[:, 1], p[:, 1] - p[:, 0]], axis=1).reshape(d)
    q = x.reshape(d // 2, 2)
    adjacent = np.stack([q[:, 0] + q[:, 1], q[:, 0] - q[:, 1]], axis=1).reshape(d)
    return swapped, adjacent


@_checker("butterfly_stage")
def check_butterfly_stage(butterfly_stage):
    """Check ``butterfly_stage(x, h)`` against ``tql.fwht_stages``: ``(a, b) -> (a + b, a - b)``."""
    x8 = np.arange(1.0, 9.0)
    r16 = np.round(_rng(0).standard_normal(16), 2)
    for name, x in [("np.arange(1.0, 9.0)", x8), ("np.round(np.random.default_rng(0)"
                                                   ".standard_normal(16), 2)", r16),
                    ("np.array([3.0, -1.0])", np.array([3.0, -1.0]))]:
        stages = hadamard.fwht_stages(x)
        for s in range(len(stages) - 1):
            h = 2 ** s
            inp = stages[s]
            case = f"x = tql.fwht_stages({name})[{s}], h = {h}"
            before = inp.copy()
            got = _call(butterfly_stage, inp, h, case=case, copy=False)
            if got is None and not np.array_equal(inp, before):
                raise _Failure("your function changed x and returned None", case=case,
                               hint="work out of place: build a new array (y = x.copy(), or "
                                    "np.empty_like(x)) and return it; leave x as it was.")
            got = _array(got, case, "the stage", shape=inp.shape)
            swapped, adjacent = _stage_variants(before, h)
            _expect(got, stages[s + 1], case, detectors=[
                (swapped, "the second output of a butterfly is a - b (the first element minus "
                          "the second), not b - a."),
                (adjacent, "pair element i with i + h (inside each block of 2h), not with its "
                           "neighbour i + 1." if h > 1 else ""),
                (before, "the stage must change x: (a, b) becomes (a + b, a - b)."),
            ], hint="for each block start j = 0, 2h, 4h, ... and i in j .. j + h - 1: "
                    "a, b = x[i], x[i + h]; y[i], y[i + h] = a + b, a - b.")
            if not np.array_equal(inp, before):
                raise _Failure("the result is right, but your function also changed its input x",
                               case=case, hint="work out of place: write into a new array "
                                               "(y = x.copy()) and leave x as it was.")
    return "Every stage of d = 2, 8 and 16 matches tql.fwht_stages."


def _fwht_cases():
    e0 = np.zeros(8)
    e0[0] = 1.0
    return [("x = np.array([5.0])  (d = 1)", np.array([5.0])),
            ("x = np.array([1.0, 2.0])", np.array([1.0, 2.0])),
            ("x = np.eye(8)[0]", e0),
            ("x = np.arange(8.0)", np.arange(8.0)),
            ("x = np.random.default_rng(1).standard_normal(64)", _rng(1).standard_normal(64)),
            ("x = np.random.default_rng(2).standard_normal(256)", _rng(2).standard_normal(256))]


def _fwht_detectors(x, expected):
    d = x.size
    return [
        (expected * math.sqrt(d), "divide by sqrt(d) at the end: the orthonormal transform is "
                                  "H x / sqrt(d)."),
        (expected / math.sqrt(d), "divide by sqrt(d) once, not by d."),
    ]


@_checker("fwht")
def check_fwht(fwht):
    """Check ``fwht(x)`` (out of place, orthonormal) against ``tql.fwht``."""
    for case, x in _fwht_cases():
        expected = hadamard.fwht(x)
        before = x.copy()
        arg = x.copy()
        got = _array(_call(fwht, arg, case=case, copy=False), case, "the transform",
                     shape=x.shape)
        d = x.size
        hint = "apply the stages h = 1, 2, 4, ... while h < d, then divide by sqrt(d)."
        if d >= 64 and _close(got[:8], hadamard.fwht(x[:8])):
            hint = "loop over all the stages: h = 1, 2, 4, ... while h < d (not a fixed 3)."
        _expect(got, expected, case, detectors=_fwht_detectors(x, expected), hint=hint)
        if not np.array_equal(arg, before):
            raise _Failure("your function changed its input x", case=case,
                           hint="out of place: work on a copy (y = x.astype(float) makes one) "
                                "and return it.")
    return "Matches tql.fwht for d = 1, 2, 8, 64, 256 and leaves x untouched."


def _fwht_overwrite_bug(x):
    """The in-place slip: x[i] = a + b; x[j] = x[i] - x[j] (= a)."""
    y = x.astype(np.float64).copy()
    d = y.size
    h = 1
    while h < d:
        for j in range(0, d, 2 * h):
            for i in range(j, j + h):
                y[i] = y[i] + y[i + h]
                y[i + h] = y[i] - y[i + h]
        h *= 2
    return y / math.sqrt(d)


@_checker("fwht_inplace")
def check_fwht_inplace(fwht_inplace):
    """Check ``fwht_inplace(x)``: transforms ``x`` itself (orthonormal), like ``tql.fwht``."""
    for case, x in _fwht_cases():
        expected = hadamard.fwht(x)
        arr = x.copy()
        _call(fwht_inplace, arr, case=case, copy=False)
        if x.size > 1 and np.array_equal(arr, x):
            raise _Failure("x is unchanged after the call", case=case, expected=expected, got=arr,
                           what="x", hint="write the results back into x (x[i], x[i + h] = "
                                          "a + b, a - b, or x[:] = ...); `x = ...` only gives "
                                          "a new array the old name.")
        detectors = [(_fwht_overwrite_bug(x), "x[i] was overwritten before x[i] - x[i + h] was "
                                              "computed: read both first (a, b = x[i], x[i + h]), "
                                              "then write both.")]
        _expect(arr, expected, case, what="x", detectors=detectors + _fwht_detectors(x, expected),
                hint="apply the stages h = 1, 2, 4, ... to x itself, then x /= sqrt(d).")
    return "x is transformed in place and matches tql.fwht for d = 1 to 256."


@_checker("sylvester")
def check_sylvester(sylvester):
    """Check ``sylvester(n)``: the +1/-1 Sylvester Hadamard matrix, built recursively."""
    for n in (1, 2, 4, 8, 64):
        case = f"n = {n}"
        expected = hadamard.hadamard(n)
        got = _array(_call(sylvester, n, case=case), case, "H", shape=(n, n))
        h = hadamard.hadamard(n // 2) if n > 1 else None
        detectors = [(expected / math.sqrt(n), "entries are +1 and -1: no 1/sqrt(n) here.")]
        if h is not None:
            detectors += [
                (np.block([[h, -h], [h, h]]), "the minus sign goes in the bottom-right block: "
                                              "[[H, H], [H, -H]]."),
                (np.block([[-h, h], [h, h]]), "the minus sign goes in the bottom-right block: "
                                              "[[H, H], [H, -H]]."),
                (np.block([[h, h], [-h, h]]), "the minus sign goes in the bottom-right block: "
                                              "[[H, H], [H, -H]]."),
            ]
        _expect(got, expected, case, what="H", detectors=detectors,
                hint="H_1 = [[1]], H_2m = [[H_m, H_m], [H_m, -H_m]] (np.block).")
    return "Equal to tql.hadamard(n) for n = 1, 2, 4, 8 and 64."


# ======================================================================================
# Lesson 06: random signs
# ======================================================================================


@_checker("spike_preimage")
def check_spike_preimage(spike_preimage):
    """Check ``spike_preimage(d)``: a unit vector that the fixed orthonormal H maps to a spike."""
    for d in (4, 8, 64):
        case = f"d = {d}"
        x = _array(_call(spike_preimage, d, case=case), case, "x", shape=(d,)).astype(np.float64)
        norm = float(np.linalg.norm(x))
        if abs(norm - 1) > 1e-6:
            raise _Failure("x should be a unit vector", case=case, expected=1.0, got=norm,
                           what="||x||", hint="divide by its length: x / np.linalg.norm(x).")
        y = hadamard.fwht(x)
        peak = float(np.max(np.abs(y)))
        if peak < 1 - 1e-6:
            hint = ("that is a spike already, and H spreads a spike flat. Go backwards: H is its "
                    "own inverse, so x = H e_0 = tql.fwht(np.eye(d)[0]) lands on e_0."
                    if np.max(np.abs(x)) > 1 - 1e-6 else
                    "H is its own inverse: the vector that H maps to e_k is H e_k.")
            raise _Failure("tql.fwht(x) is not a spike: its largest |coordinate| should be 1",
                           case=case,
                           expected=1.0, got=peak, what="max |fwht(x)|", hint=hint)
    return "tql.fwht maps your flat unit vector to a single spike for d = 4, 8 and 64."


def _rht_cases():
    out = []
    for d, seed, shape in [(8, 0, (8,)), (64, 1, (5, 64)), (256, 2, (3, 256))]:
        rh = rotation.RandomizedHadamard(d, seed=seed)
        x = _rng(seed + 10).standard_normal(shape)
        case = (f"x = np.random.default_rng({seed + 10}).standard_normal({shape}), "
                f"rh = tql.RandomizedHadamard({d}, seed={seed}), signs1 = rh.signs1, "
                f"signs2 = rh.signs2")
        out.append((case, rh, x))
    return out


@_checker("rht_forward")
def check_rht_forward(rht_forward):
    """Check ``rht_forward(x, signs1, signs2)`` against ``RandomizedHadamard.forward``."""
    for case, rh, x in _rht_cases():
        s1, s2 = rh.signs1.astype(np.float64), rh.signs2.astype(np.float64)
        expected = rh.forward(x)
        got = _array(_call(rht_forward, x, rh.signs1.copy(), rh.signs2.copy(), case=case), case,
                     "y", shape=x.shape)
        d = x.shape[-1]
        _expect(got, expected, case, what="y", detectors=[
            (s1 * hadamard.fwht(s2 * x), "signs1 goes before the transform and signs2 after: "
                                         "y = signs2 * fwht(signs1 * x)."),
            (hadamard.fwht(s1 * x), "you left out the second flip: multiply by signs2 after "
                                    "the transform."),
            (s2 * hadamard.fwht(x), "you left out the first flip: multiply x by signs1 before "
                                    "the transform."),
            (s2 * hadamard.fwht(s1 * x) * math.sqrt(d), "use the orthonormal transform "
                                                       "(tql.fwht divides by sqrt(d))."),
        ], hint="y = signs2 * tql.fwht(signs1 * x).")
    return "Matches tql.RandomizedHadamard.forward for d = 8, 64, 256 (one vector and batches)."


@_checker("rht_inverse")
def check_rht_inverse(rht_inverse):
    """Check ``rht_inverse(y, signs1, signs2)`` against ``RandomizedHadamard.inverse``."""
    for case, rh, x in _rht_cases():
        y = rh.forward(x)
        case = case.replace("x = ", "y = rh.forward(x), x = ")
        s1, s2 = rh.signs1.astype(np.float64), rh.signs2.astype(np.float64)
        expected = rh.inverse(y)
        got = _array(_call(rht_inverse, y, rh.signs1.copy(), rh.signs2.copy(), case=case), case,
                     "x", shape=y.shape)
        _expect(got, expected, case, what="x", detectors=[
            (s2 * hadamard.fwht(s1 * y), "undo in reverse order: first signs2, then the "
                                         "transform, then signs1."),
            (hadamard.fwht(y), "undo the sign flips too: x = signs1 * fwht(signs2 * y)."),
            (s1 * hadamard.fwht(s2 * y) * math.sqrt(y.shape[-1]),
             "use the orthonormal transform (tql.fwht divides by sqrt(d))."),
        ], hint="each step is its own inverse: x = signs1 * tql.fwht(signs2 * y).")
    return "Undoes tql.RandomizedHadamard.forward exactly for d = 8, 64 and 256."


def _flip_oracle(x, bits, seed):
    d = x.shape[-1]
    rh = rotation.RandomizedHadamard(d, seed=seed)
    u = x / np.linalg.norm(x, axis=-1, keepdims=True)
    t1 = math.sqrt(d) * hadamard.fwht(u * rh.signs1.astype(np.float64))
    t2 = t1 * rh.signs2.astype(np.float64)
    cb = codebooks.lloyd_max_codebook(bits, d)
    return tuple(float(np.mean((t - cb.dequantize(cb.quantize(t))) ** 2)) for t in (t1, t2))


@_checker("mse_one_and_two_flips")
def check_second_flip(mse_one_and_two_flips):
    """Check ``mse_one_and_two_flips(x, bits, seed) -> (mse_one_flip, mse_two_flips)``."""
    flat = np.ones((4, 64)) + 0.01 * _rng(9).standard_normal((4, 64))
    cases = [("x = tql.make_kv_vectors(300, 64, seed=0), bits = 2, seed = 0",
              data.make_kv_vectors(300, 64, seed=0).astype(np.float64), 2, 0),
             ("x = tql.make_kv_vectors(300, 128, seed=1), bits = 3, seed = 5",
              data.make_kv_vectors(300, 128, seed=1).astype(np.float64), 3, 5),
             ("x = np.ones((4, 64)) + 0.01 * np.random.default_rng(9).standard_normal((4, 64)), "
              "bits = 1, seed = 2", flat, 1, 2)]
    for case, x, bits, seed in cases:
        expected = _flip_oracle(x, bits, seed)
        out = _call(mse_one_and_two_flips, x, bits, seed, case=case)
        if not isinstance(out, (tuple, list, np.ndarray)) or len(out) != 2:
            raise _Failure("return two numbers: (mse_one_flip, mse_two_flips)", case=case,
                           got=out, hint="end with `return mse_one, mse_two`.")
        got = tuple(_number(v, case, "each MSE") for v in out)
        d = x.shape[-1]
        _expect(got, expected, case, rtol=1e-6, atol=1e-12, detectors=[
            (lambda g: _close(np.array(g) * d, expected, 1e-4),
             "scale the rotated unit vector by sqrt(d): the codebook is in scaled units "
             "(t = sqrt(d) * y has variance 1)."),
            (lambda g: _close(np.array(g) / d, expected, 1e-4),
             "work with unit vectors: divide x by its norm before rotating."),
        ], hint="t = sqrt(d) * fwht(signs1 * u) (one flip) and t * signs2 (two flips); "
                "the MSE is np.mean((t - cb.dequantize(cb.quantize(t)))**2).")
    return ("Both MSEs match the library's parts, and they are equal: a symmetric codebook "
            "does not see the second flip.")


# ======================================================================================
# Lesson 07: optimal slots (Lloyd-Max)
# ======================================================================================


def _nearest(samples, centroids):
    return np.argmin(np.abs(samples[:, None] - centroids[None, :]), axis=1)


@_checker("assign_cells")
def check_assign_cells(assign_cells):
    """Check ``assign_cells(samples, centroids)``: the index of each sample's nearest centroid."""
    cb = codebooks.lloyd_max_codebook(2)
    cases = [
        ("samples = np.array([-2.0, -0.1, 0.1, 0.7, 3.0]), centroids = np.array([-1.0, 0.0, 1.0])",
         np.array([-2.0, -0.1, 0.1, 0.7, 3.0]), np.array([-1.0, 0.0, 1.0])),
        ("samples = np.random.default_rng(0).standard_normal(1000), "
         "centroids = tql.lloyd_max_codebook(2).centroids",
         _rng(0).standard_normal(1000), np.array(cb.centroids)),
        ("samples = np.random.default_rng(1).uniform(-5, 5, 200), "
         "centroids = np.array([-3.0, -2.5, 0.0, 4.0])",
         _rng(1).uniform(-5, 5, 200), np.array([-3.0, -2.5, 0.0, 4.0])),
        ("samples = np.array([-1.0, 2.0]), centroids = np.array([0.5])  (one cell)",
         np.array([-1.0, 2.0]), np.array([0.5])),
    ]
    for case, s, c in cases:
        expected = _nearest(s, c)
        got = _array(_call(assign_cells, s, c, case=case), case, "the cells", shape=s.shape)
        if got.dtype.kind == "f" and not np.all(got == np.round(got)):
            if _close(got, c[expected]):
                raise _Failure("your function returned the centroids' values", case=case,
                               expected=expected, got=got,
                               hint="return the index of the nearest centroid (an integer), "
                                    "not its value.")
        if not np.array_equal(np.asarray(got, dtype=np.float64), expected):
            hint = _first_hint(got, [
                (np.searchsorted(c, s), "the cells are cut at the midpoints between centroids "
                                        "(nearest centroid), not at the centroids themselves."),
                (c[expected], "return the index of the nearest centroid, not its value."),
            ], "nearest centroid: np.searchsorted(midpoints, samples) with midpoints = "
               "(c[:-1] + c[1:]) / 2, or np.argmin of the distances.")
            raise _Failure(f"{int(np.sum(got != expected))} of {s.size} samples are in the "
                           f"wrong cell", case=case, expected=expected, got=got, hint=hint)
    return "Nearest-centroid cells for 1, 3 and 4 centroids and 1,000 Gaussian samples."


def _lloyd_step_ref(s, c):
    cells = _nearest(s, c)
    new = np.array(c, dtype=np.float64)
    for k in range(c.size):
        inside = s[cells == k]
        if inside.size:
            new[k] = inside.mean()
    return new


@_checker("lloyd_step")
def check_lloyd_step(lloyd_step):
    """Check ``lloyd_step(samples, centroids)``: centroids moved to the mean of their cells."""
    gauss = _rng(0).standard_normal(20000)
    cases = [
        ("samples = np.array([0.0, 1.0, 2.0, 10.0]), centroids = np.array([0.0, 5.0])",
         np.array([0.0, 1.0, 2.0, 10.0]), np.array([0.0, 5.0])),
        ("samples = np.random.default_rng(0).standard_normal(20000), "
         "centroids = np.array([-1.5, -0.5, 0.5, 1.5])", gauss, np.array([-1.5, -0.5, 0.5, 1.5])),
        ("samples = np.random.default_rng(0).standard_normal(20000), "
         "centroids = np.array([-1.0, 0.0, 100.0])  (the last cell is empty)",
         gauss, np.array([-1.0, 0.0, 100.0])),
    ]
    for case, s, c in cases:
        expected = _lloyd_step_ref(s, c)
        got = _array(_call(lloyd_step, s, c, case=case), case, "the new centroids", shape=c.shape)
        cells = _nearest(s, c)
        medians = np.array([np.median(s[cells == k]) if np.any(cells == k) else c[k]
                            for k in range(c.size)])
        _expect(got, expected, case, rtol=1e-9, atol=1e-12, detectors=[
            (lambda g: not np.all(np.isfinite(g)),
             "a cell with no samples has no mean (NaN): keep its old centroid."),
            (c, "the centroids did not move: set each to the mean of the samples in its cell."),
            (medians, "the centroid is the mean of its cell, not the median."),
        ], hint="cut the cells at the midpoints of the centroids, then centroid k = mean of "
                "the samples in cell k (unchanged if the cell is empty).")
    start = np.array([-1.5, -0.5, 0.5, 1.5])
    exact = codebooks.lloyd_max_step(start).centroids
    got = _array(_call(lloyd_step, gauss, start, case=cases[1][0]), cases[1][0], "the centroids")
    if np.max(np.abs(got - exact)) > 0.05:  # the empirical step tracks the exact one
        raise _Failure("far from the exact step tql.lloyd_max_step(centroids)", case=cases[1][0],
                       expected=exact, got=got, hint="use the midpoint cells and the cell means.")
    return ("Matches the reference step (empty cell included) and, on 20,000 Gaussian samples, "
            "the exact tql.lloyd_max_step to within sampling noise.")


@_checker("fit_codebook")
def check_fit_codebook(fit_codebook):
    """Check ``fit_codebook(samples, bits, n_iter)`` against ``tql.lloyd_max_codebook(bits)``."""
    samples = _rng(0).standard_normal(20000)
    for bits in (1, 2, 3):
        case = (f"samples = np.random.default_rng(0).standard_normal(20000), bits = {bits}, "
                f"n_iter = 100")
        expected = np.array(codebooks.lloyd_max_codebook(bits).centroids)
        got = _array(_call(fit_codebook, samples, bits, 100, case=case), case, "the centroids")
        if got.shape != expected.shape:
            raise _Failure(f"got {got.size} centroids, expected 2**bits = {expected.size}",
                           case=case, hint="start from 2**bits levels.")
        if np.any(np.diff(got) < 0):
            raise _Failure("the centroids are not sorted", case=case, got=got,
                           hint="return them in ascending order (np.sort).")
        if np.max(np.abs(got - expected)) > 0.06:  # sampling noise ~0.02 at 3 bits
            mse_got = float(np.mean((samples - got[_nearest(samples, got)]) ** 2))
            hint = ("not converged yet: run all n_iter steps (or more)."
                    if mse_got > 1.02 * codebooks.lloyd_max_codebook(bits).mse else
                    "start from levels spread over the samples, e.g. evenly spaced between "
                    "samples.min() and samples.max(), and apply lloyd_step n_iter times.")
            raise _Failure("far from the Lloyd-Max codebook (more than sampling noise)", case=case,
                           expected=expected, got=got, what="centroids", hint=hint)
    return "Converges to tql.lloyd_max_codebook(bits) for 1, 2 and 3 bits, within sampling noise."


def _no_tails_mse(step, bits):
    from scipy import integrate, stats

    n = 2 ** bits
    c = (np.arange(n) - (n - 1) / 2) * step
    b = np.concatenate(([c[0]], (c[:-1] + c[1:]) / 2, [c[-1]]))
    total = 0.0
    for i in range(n):
        total += integrate.quad(lambda t: (t - c[i]) ** 2 * stats.norm.pdf(t), b[i], b[i + 1])[0]
    return total


@_checker("uniform_codebook_mse")
def check_uniform_codebook_mse(uniform_codebook_mse):
    """Check ``uniform_codebook_mse(step, bits)`` against ``tql.expected_mse`` (Gaussian law)."""
    for step, bits in [(1.0, 1), (0.9957, 2), (0.5, 3), (0.1, 2), (2.0, 3)]:
        case = f"step = {step}, bits = {bits}"
        n = 2 ** bits
        levels = (np.arange(n) - (n - 1) / 2) * step
        expected = codebooks.expected_mse(levels)
        got = _number(_call(uniform_codebook_mse, step, bits, case=case), case)
        _expect(got, expected, case, rtol=1e-3, atol=1e-7, detectors=[
            (_no_tails_mse(step, bits), "include the tails: values beyond the outer levels "
                                        "map to the outer levels, so integrate out to "
                                        "-inf and +inf."),
            (step ** 2 / 12, "step**2 / 12 is the small-step approximation without the tails; "
                             "integrate (t - Q(t))**2 * phi(t) exactly."),
            (lambda g: _close(g, expected * math.sqrt(2 * math.pi), 1e-3),
             "weight by the normal density phi(t) = exp(-t**2 / 2) / sqrt(2 pi), "
             "normalising constant included."),
        ], hint="levels c_i = (i - (2**bits - 1) / 2) * step; cells cut at the midpoints; "
                "MSE = sum over cells of the integral of (t - c_i)**2 phi(t).")
    return "Matches tql.expected_mse for 1 to 3 bits and steps from 0.1 to 2."


# ======================================================================================
# Lesson 08: the complete pipeline
# ======================================================================================


def _pack_msb_first(codes, bits):
    bits_mat = np.array([[(int(c) >> (bits - 1 - b)) & 1 for b in range(bits)] for c in codes],
                        dtype=np.uint8).reshape(-1)
    return np.packbits(bits_mat, bitorder="big") if bits_mat.size else np.zeros(0, np.uint8)


def _pack_cases():
    return [("codes = np.array([5, 3, 7, 1])", np.array([5, 3, 7, 1], dtype=np.uint8)),
            ("codes = np.arange(8) (every 3-bit code once)", np.arange(8, dtype=np.uint8)),
            ("codes = np.random.default_rng(0).integers(0, 8, 64)",
             _rng(0).integers(0, 8, 64).astype(np.uint8)),
            ("codes = np.array([1, 2, 3, 4, 5])  (n not a multiple of 8)",
             np.array([1, 2, 3, 4, 5], dtype=np.uint8)),
            ("codes = np.array([6])", np.array([6], dtype=np.uint8)),
            ("codes = np.full(16, 7)", np.full(16, 7, dtype=np.uint8))]


@_checker("pack3")
def check_pack3(pack3):
    """Check ``pack3(codes)`` against ``tql.pack_bits(codes, 3)`` (little-endian bit stream)."""
    for case, codes in _pack_cases():
        expected = packing.pack_bits(codes, 3)
        got = _call(pack3, codes.copy(), case=case)
        g = _array(got, case, "the bytes")
        if g.shape != expected.shape:
            hint = (f"n codes of 3 bits take ceil(3 n / 8) = {expected.size} bytes; "
                    f"one byte per code is no packing." if g.size == codes.size else
                    "n codes of 3 bits take ceil(3 n / 8) bytes: (3 * n + 7) // 8.")
            raise _Failure(f"got {g.size} bytes, expected {expected.size}", case=case,
                           expected=expected, got=g, hint=hint)
        if g.dtype != np.uint8:
            raise _Failure(f"the bytes should have dtype uint8, got {g.dtype}", case=case,
                           hint="return np.uint8 values (0 .. 255): .astype(np.uint8).")
        _expect(g, expected, case, what="bytes", detectors=[
            (_pack_msb_first(codes, 3), "the layout is least significant bit first: bit j of "
                                        "code i is stream bit 3 i + j, and stream bit k is bit "
                                        "k % 8 (value 2**(k % 8)) of byte k // 8."),
        ], hint="code i occupies stream bits 3 i .. 3 i + 2 (lowest bit first); stream bit k "
                "is bit k % 8 of byte k // 8. Example: [5, 3, 7, 1] -> [221, 3].")
    return "Same bytes as tql.pack_bits(codes, 3), also when n is not a multiple of 8."


@_checker("unpack3")
def check_unpack3(unpack3):
    """Check ``unpack3(packed, n)`` against ``tql.unpack_bits(packed, 3, n)``."""
    for case, codes in _pack_cases():
        packed = packing.pack_bits(codes, 3)
        n = codes.size
        case = f"packed = tql.pack_bits({case.split(' = ', 1)[1].split('  (')[0]}, 3), n = {n}"
        expected = packing.unpack_bits(packed, 3, n)
        got = _array(_call(unpack3, packed.copy(), n, case=case), case, "the codes", shape=(n,))
        _expect(got, expected, case, what="codes", detectors=[
            (lambda g: np.max(g) > 7, "mask each code to its 3 bits: & 7 (0b111)."),
            (_unpack_msb(packed, n), "the layout is least significant bit first (see "
                                     "tql.pack_bits' docstring)."),
        ], hint="code i = (stream >> 3 i) & 7, where stream bit k is bit k % 8 of byte k // 8.")
    return "Inverts tql.pack_bits(codes, 3) for 1 to 64 codes."


def _unpack_msb(packed, n):
    stream = np.unpackbits(packed, bitorder="big")[:3 * n].reshape(n, 3)
    return (stream * np.array([4, 2, 1])).sum(axis=1)


def _tq_reference(x, bits, seed):
    d = x.shape[-1]
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    rh = rotation.RandomizedHadamard(d, seed=seed)
    cb = codebooks.lloyd_max_codebook(bits, d)
    codes = cb.quantize(math.sqrt(d) * rh.forward(x / norms))
    packed = packing.pack_bits(codes, bits)
    x_hat = rh.inverse(cb.dequantize(codes) / math.sqrt(d)) * norms
    return codes, packed, norms[:, 0], x_hat


@_checker("tq_encode / tq_decode")
def check_roundtrip(tq_encode, tq_decode):
    """Check ``tq_encode(x, bits, seed) -> (packed, norms)`` and its inverse ``tq_decode``.

    ``tq_decode(packed, norms, bits, d, seed) -> x_hat``.
    """
    for n, d, n_out, bits, seed in [(500, 64, 0, 2, 0), (500, 128, 5, 3, 1), (300, 64, 0, 4, 2)]:
        x = data.make_kv_vectors(n, d, n_outliers=n_out, seed=seed).astype(np.float64)
        case = (f"x = tql.make_kv_vectors({n}, {d}, n_outliers={n_out}, seed={seed}), "
                f"bits = {bits}, seed = {seed}")
        codes, packed, norms, x_hat_ref = _tq_reference(x, bits, seed)
        out = _call(tq_encode, x, bits, seed, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise _Failure("tq_encode should return two things: packed, norms", case=case,
                           got=out, hint="end with `return packed, norms`.")
        p = _array(out[0], case, "packed", shape=packed.shape)
        nm = _array(out[1], case, "norms")
        if nm.size != n:
            raise _Failure(f"norms should hold one number per vector ({n}), got shape {nm.shape}",
                           case=case, hint="np.linalg.norm(x, axis=-1).")
        if not _close(nm.reshape(n), norms, 1e-3, 1e-6):
            raise _Failure("the norms are wrong", case=case, expected=norms, got=nm,
                           hint="norms = np.linalg.norm(x, axis=-1): the length of each vector.")
        got_codes = packing.unpack_bits(p.astype(np.uint8), bits, d)
        wrong = float(np.mean(got_codes != codes))
        if wrong > 5e-3:  # rounding (float32, float16 norms) may flip codes on a boundary
            t = math.sqrt(d) * rotation.RandomizedHadamard(d, seed=seed).forward(
                x / np.linalg.norm(x, axis=-1, keepdims=True))
            cb = codebooks.lloyd_max_codebook(bits, d)
            hint = _first_hint(got_codes, [
                (cb.quantize(t / math.sqrt(d)), "scale the rotated unit vector by sqrt(d) "
                                                "before quantizing: the codebook is in scaled "
                                                "units (variance 1)."),
                (cb.quantize(math.sqrt(d) * rotation.RandomizedHadamard(d, seed=seed).forward(x)),
                 "divide x by its norm first: the codebook is made for unit vectors."),
                (_lloyd_gauss_codes(t, bits), "use the codebook of the exact law at this d: "
                                             "tql.lloyd_max_codebook(bits, d)."),
            ], "codes = cb.quantize(sqrt(d) * rh.forward(x / norms)) with "
               "rh = tql.RandomizedHadamard(d, seed) and cb = tql.lloyd_max_codebook(bits, d); "
               "then tql.pack_bits(codes, bits).")
            raise _Failure(f"{wrong:.1%} of the codes differ from the library's parts",
                           case=case, expected=codes[0], got=got_codes[0],
                           what="codes of the first vector", hint=hint)
        dcase = case + "; packed, norms = (the library's encoding)"
        x_hat = _array(_call(tq_decode, packed.copy(), norms.copy(), bits, d, seed, case=dcase),
                       dcase, "x_hat", shape=x.shape)
        if not _close(x_hat, x_hat_ref, 1e-3, 1e-4):
            hint = _first_hint(x_hat, [
                (x_hat_ref / norms[:, None], "multiply by the norms at the end: "
                                             "x_hat = norms[:, None] * (...)."),
                (x_hat_ref * math.sqrt(d), "divide the centroids by sqrt(d) before the "
                                           "inverse rotation."),
                (lambda g: _close(g, rotation.RandomizedHadamard(d, seed=seed).forward(
                    x_hat_ref / norms[:, None]) * norms[:, None], 1e-3, 1e-4),
                 "decode with rh.inverse, not rh.forward."),
            ], "x_hat = norms[:, None] * rh.inverse(cb.dequantize(codes) / sqrt(d)), codes "
               "from tql.unpack_bits(packed, bits, d).")
            raise _Failure("tq_decode does not invert the library's encoding", case=dcase,
                           expected=x_hat_ref[0], got=x_hat[0], what="first vector", hint=hint)
        # the whole round trip, learner's encode then learner's decode
        packed2, norms2 = _call(tq_encode, x, bits, seed, case=case)
        x_hat = _array(_call(tq_decode, np.asarray(packed2), np.asarray(norms2), bits, d, seed,
                             case=case), case, "x_hat", shape=x.shape)
        rel = float(np.mean(np.sum((x - x_hat) ** 2, axis=-1) / np.sum(x ** 2, axis=-1)))
        predicted = codebooks.lloyd_max_codebook(bits, d).mse
        # the prediction is an average over directions: Gaussian vectors meet it within
        # sampling noise; outlier-heavy ones land below it with the randomized Hadamard
        if rel > 1.1 * predicted or (n_out == 0 and rel < 0.9 * predicted):
            raise _Failure("the round-trip error is far from the prediction", case=case,
                           expected=predicted, got=rel, what="mean ||x - x_hat||^2 / ||x||^2",
                           hint="tq_decode(*tq_encode(x, bits, seed), bits, d, seed) should "
                                "give x back up to the codebook's error.")
    return ("Codes and decoding match the library's parts for 2, 3 and 4 bits; your round "
            "trip's error ||x - x_hat||^2 / ||x||^2 agrees with the codebook's prediction.")


def _lloyd_gauss_codes(t, bits):
    """Codes from the Gaussian-limit codebook (a typical slip: d=None instead of the exact d)."""
    return codebooks.lloyd_max_codebook(bits).quantize(t)


# ---- lessons 09-11 ----
# The checkers of lessons 09 (the GPU kernel), 10 (inner products and QJL) and
# 11 (real KV caches). Their oracles are the library's modules, imported like the
# ones at the top of this file.

gpu_emulation = import_module(f"{__package__}.gpu_emulation")

__all__ += [
    # lesson 09
    "check_shuffle_partner", "check_stage_kind", "check_fwht_traffic", "check_shuffle_stage",
]


# ======================================================================================
# Lesson 09: the GPU kernel
# ======================================================================================


@_checker("shuffle_partner")
def check_shuffle_partner(shuffle_partner):
    """Check ``shuffle_partner(lane, mask)``: the lane a shuffle reads, ``lane ^ mask``."""
    lanes = np.arange(32)
    cfg = gpu_emulation.fwht_config(256)  # one row per warp: 32 lanes
    cases = [(f"lane = np.arange(32), mask = {m}", lanes, m) for m in (1, 2, 4, 8, 16)]
    cases += [("lane = 5, mask = 3", 5, 3), ("lane = 0, mask = 31", 0, 31),
              ("lane = np.array([6, 7, 30]), mask = 6", np.array([6, 7, 30]), 6)]
    for case, lane, mask in cases:
        # the oracle: the emulated shuffle moves thread indices like values
        src = gpu_emulation._shfl_xor(lanes[None, :], mask, cfg)[0]
        expected = src[lane]
        got = _call(shuffle_partner, lane, mask, case=case)
        got = _array(got, case, "the partner lane(s)", shape=np.shape(expected))
        l = np.asarray(lane)
        _expect(got, expected, case, what="partner", detectors=[
            (l + mask, "the partner differs from the lane in the bits of the mask: xor (^), "
                       "not +. Lane 5 with mask 3 reads lane 6 (0b101 ^ 0b011 = 0b110)."),
            ((l + mask) % 32, "a shuffle does not rotate the lanes: it flips the bits of the "
                              "mask, lane ^ mask (an exchange, so lane ^ mask ^ mask = lane)."),
            (l - mask, "the partner is lane ^ mask: it adds the mask for the lanes whose mask "
                       "bit is 0 and subtracts it for the others."),
            (l | mask, "| sets the mask's bits; the partner flips them: lane ^ mask."),
            (l & mask, "& keeps the mask's bits; the partner flips them: lane ^ mask."),
        ], hint="__shfl_xor_sync(FULL, v, mask) gives lane l the value of lane l ^ mask.")
    return ("Partners for every lane and the masks 1 to 16 of the kernel's shuffle stages (and "
            "two other masks) match the emulated __shfl_xor_sync.")


def _stage_configs():
    """The kernel's table and two teaching layouts (small warps), as (text, config) pairs."""
    out = [(f"cfg = emu.fwht_config({c.d})", c) for c in gpu_emulation.FWHT_CONFIGS.values()]
    teaching = [dict(log_d=6, vec=4, threads_per_row=8, chunks=2, rows_per_block=1, warp_size=4),
                dict(log_d=7, vec=4, threads_per_row=16, chunks=2, rows_per_block=1,
                     warp_size=8)]
    for kw in teaching:
        args = ", ".join(f"{k}={v}" for k, v in kw.items())
        out.append((f"cfg = emu.FwhtConfig({args})", gpu_emulation.FwhtConfig(**kw)))
    return out


def _kind_with(stride, cfg, lanes, inclusive=False):
    """A stage kind with the shuffle boundary at ``vec * lanes`` (a typical slip: warp_size)."""
    kinds = gpu_emulation.STAGE_KINDS
    bounds = (cfg.vec, cfg.vec * lanes, cfg.vec * cfg.threads_per_row)
    for bound, kind in zip(bounds, kinds):
        if (stride <= bound if inclusive else stride < bound):
            return kind
    return kinds[3]


@_checker("stage_kind")
def check_stage_kind(stage_kind):
    """Check ``stage_kind(stride, cfg)`` against ``cfg.stage_plan()`` for every kernel layout."""
    kinds = gpu_emulation.STAGE_KINDS
    for text, cfg in _stage_configs():
        plan = cfg.stage_plan()
        strides = [s for _, s, _ in plan]
        expected = [k for k, _, _ in plan]
        got = []
        for stride in strides:
            case = f"{text}, stride = {stride}"
            answer = _call(stage_kind, stride, cfg, case=case)
            if answer not in kinds:
                raise _Failure(f"your function returned {answer!r}, which is not a stage kind",
                               case=case, expected=expected[len(got)],
                               hint="return one of the strings of emu.STAGE_KINDS: "
                                    + ", ".join(repr(k) for k in kinds) + ".")
            got.append(answer)
        if got == expected:
            continue
        wrong = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
        case = f"{text}, stride = {strides[wrong]}"
        with_warp = [_kind_with(s, cfg, cfg.warp_size) for s in strides]
        inclusive = [_kind_with(s, cfg, cfg.row_lanes, inclusive=True) for s in strides]
        if got == with_warp:
            hint = (f"here a row has threads_per_row = {cfg.threads_per_row}, fewer than the "
                    f"{cfg.warp_size} lanes of a warp: the shuffles end at stride vec * "
                    f"row_lanes, with row_lanes = min(threads_per_row, warp_size) "
                    f"(cfg.row_lanes).")
        elif got == inclusive:
            hint = ("the boundaries are exclusive: stride vec pairs element j with j + vec, "
                    "which is the first element of the next thread's load (a lane bit, not a "
                    "bit of i).")
        else:
            hint = ("write the element index in binary: its lowest log2(vec) bits are i, then "
                    "log2(row_lanes) lane bits, then the warp bits, then the bits of c. The "
                    "stride's bit says which: stride < vec registers; < vec * row_lanes warp "
                    "shuffle; < vec * threads_per_row shared memory; else registers (chunks).")
        raise _Failure(f"stride {strides[wrong]} is a {expected[wrong]!r} stage", case=case,
                       expected=expected[wrong], got=got[wrong], hint=hint)
    return ("The stage kind of every stride matches cfg.stage_plan() for all 13 sizes of the "
            "kernel's table and two teaching layouts with small warps.")


@_checker("fwht_traffic")
def check_fwht_traffic(fwht_traffic):
    """Check ``fwht_traffic(d, itemsize)``: bytes moved, additions, additions per byte of a row."""
    for d, itemsize in [(2, 4), (128, 4), (1024, 4), (8192, 4), (256, 2), (64, 8)]:
        case = f"d = {d}, itemsize = {itemsize}"
        out = _call(fwht_traffic, d, itemsize, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise _Failure("return three numbers: (bytes_moved, additions, adds_per_byte)",
                           case=case, got=out,
                           hint="end with `return bytes_moved, additions, adds_per_byte`.")
        moved, adds, ratio = (_number(v, case, name) for v, name in
                              zip(out, ("bytes_moved", "additions", "adds_per_byte")))
        expected_moved = 2 * itemsize * d
        expected_adds = hadamard.hadamard_op_counts(d)[1]  # d log2 d
        _expect(moved, expected_moved, case, what="bytes_moved", detectors=[
            (itemsize * d, "count the write as well as the read: the row crosses the bus twice."),
            (2 * d, "multiply by itemsize: each element takes itemsize bytes."),
            (itemsize * d * math.log2(d) * 2 if d > 2 else -1,
             "the stages work in registers: the row is read once and written once, not once "
             "per stage (that is the point of the kernel)."),
        ], hint="one read and one write of d elements of itemsize bytes: 2 * itemsize * d.")
        _expect(adds, expected_adds, case, what="additions", detectors=[
            (d * math.log2(d) / 2, "each pair gives two results, a + b and a - b: a stage does "
                                   "d additions or subtractions, not d / 2."),
            (d * d, "that is the dense product x @ H (d multiply-adds per element); the fast "
                    "transform does d additions per stage, log2(d) stages."),
            (d * (math.log2(d) - 1), f"there are log2(d) = {int(math.log2(d))} stages "
                                     f"(strides 1, 2, ..., d/2)."),
        ], hint="log2(d) stages of d additions or subtractions each: d * log2(d) "
                "(tql.hadamard_op_counts(d)[1]).")
        _expect(ratio, expected_adds / expected_moved, case, what="adds_per_byte",
                hint="adds_per_byte = additions / bytes_moved = log2(d) / (2 * itemsize).")
    return ("Bytes, additions and additions per byte match 2 * itemsize * d, d * log2(d) and "
            "log2(d) / (2 * itemsize) for d = 2 to 8192 and 2-, 4- and 8-byte elements.")


def _shuffle_reference(regs, mask):
    lanes = np.arange(regs.shape[0])
    other = regs[lanes ^ mask]
    upper = ((lanes & mask) != 0)[:, None]
    return np.where(upper, other - regs, regs + other)


def _shuffle_cases():
    """(case, regs_in, expected) from the emulated d = 256 kernel, then random registers."""
    cfg = gpu_emulation.fwht_config(256)  # vec 4, 32 threads per row, 2 chunks: 8 registers
    x = _rng(9).standard_normal(256).astype(np.float32)
    trace = gpu_emulation.emulate_fwht_trace(x)
    idx = cfg.element_index()  # (32, 2, 4)
    out = []
    for s, (kind, _, mask) in enumerate(cfg.stage_plan(), start=1):
        if kind != gpu_emulation.STAGE_KINDS[1]:
            continue
        before = trace[s - 1].values[idx].reshape(32, -1)
        after = trace[s].values[idx].reshape(32, -1)
        out.append((f"regs = the registers of the d = 256 kernel before its stage {s} "
                    f"(shape (32, 8), float32; see the cell below), mask = {mask}",
                    before, mask, after))
    small = np.arange(32.0)[:, None] * np.array([[1.0, -0.5]]) + 1.0
    for mask in (1, 16):
        out.append((f"regs = np.arange(32.0)[:, None] * np.array([[1.0, -0.5]]) + 1.0, "
                    f"mask = {mask}", small, mask, _shuffle_reference(small, mask)))
    one = _rng(3).standard_normal((32, 1))
    out.append(("regs = np.random.default_rng(3).standard_normal((32, 1)), mask = 4", one, 4,
                _shuffle_reference(one, 4)))
    return out


def _shuffle_overwrite_bug(regs, mask):
    """The in-place slip: lanes updated one by one, later lanes reading updated partners."""
    out = np.array(regs, dtype=np.float64)
    for lane in range(out.shape[0]):
        partner = lane ^ mask
        out[lane] = out[partner] - out[lane] if lane & mask else out[lane] + out[partner]
    return out


@_checker("shuffle_stage")
def check_shuffle_stage(shuffle_stage):
    """Check ``shuffle_stage(regs, mask)`` on a (32, k) register file against the emulation."""
    for case, regs, mask, expected in _shuffle_cases():
        got = _array(_call(shuffle_stage, regs, mask, case=case), case, "the registers",
                     shape=regs.shape)
        if _close(got, expected, 1e-6, 1e-6):
            continue
        lanes = np.arange(32)
        other = regs[lanes ^ mask]
        upper = ((lanes & mask) != 0)[:, None]
        hint = _first_hint(got, [
            (np.where(upper, regs - other, regs + other),
             "the lane whose mask bit is set holds the upper element b, and its partner's value "
             "`other` is a: it keeps a - b = other - own, not own - other."),
            (np.where(upper, regs + other, other - regs),
             "upper and lower are swapped: the lane whose mask bit is 0 (lane & mask == 0) holds "
             "a and keeps a + b; the other one keeps other - own."),
            (np.where(upper, regs[(lanes + mask) % 32] - regs, regs + regs[(lanes + mask) % 32]),
             "the partner lane is lane ^ mask (exercise 9.1), not (lane + mask) % 32."),
            (_shuffle_overwrite_bug(regs, mask),
             "a lane was overwritten before its partner read it: on the GPU all 32 lanes "
             "shuffle at once, so read every partner value first (other = regs[lanes ^ mask], "
             "a new array), then build the result."),
            (regs + other, "every lane adds: the upper lane must keep other - own (the "
                           "difference)."),
            (other, "the shuffle only fetches the partner's value; the butterfly then combines "
                    "it with the lane's own."),
        ], "other = regs[np.arange(32) ^ mask]; upper = (lanes & mask) != 0 (as a column, "
           "[:, None]); return np.where(upper, other - regs, regs + other).")
        bad = ~np.all(np.isclose(got, expected, rtol=1e-6, atol=1e-6), axis=1)
        lane = int(np.argmax(bad))
        raise _Failure(f"{int(bad.sum())} of the 32 lanes hold wrong values", case=case,
                       expected=expected[lane], got=got[lane], what=f"lane {lane}:", hint=hint)
    return ("All five shuffle stages of the d = 256 kernel give the emulation's registers, and "
            "so do hand-made register files.")


# ======================================================================================
# Lesson 10: inner products and QJL
# ======================================================================================

attention_mod, turboquant = (import_module(f"{__package__}.{name}")
                             for name in ("attention", "turboquant"))

__all__ += [
    # lesson 10
    "check_attention_weights", "check_kl_divergence", "check_inner_product_ratio",
    "check_qjl_estimate",
]


def _softmax_rows(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@_checker("attention_weights")
def check_attention_weights(attention_weights):
    """Check ``attention_weights(q, K)``: ``softmax(q @ K.T / sqrt(d))`` over the keys, stable."""
    kv = data.make_kv_vectors(64, 32, seed=4).astype(np.float64)
    cases = [
        ("q = np.array([1.0, 0.0]), K = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])",
         np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])),
        ("q = np.random.default_rng(0).standard_normal(16), "
         "K = np.random.default_rng(1).standard_normal((10, 16))",
         _rng(0).standard_normal(16), _rng(1).standard_normal((10, 16))),
        ("q = np.random.default_rng(2).standard_normal((4, 32)), "
         "K = tql.make_kv_vectors(64, 32, seed=4)  (4 queries at once)",
         _rng(2).standard_normal((4, 32)), kv),
        ("q = 100 * np.ones(8), K = 100 * np.eye(8)  (scores of 10,000: exp overflows)",
         100 * np.ones(8), 100 * np.eye(8)),
    ]
    for case, q, K in cases:
        d = K.shape[1]
        s = q @ K.T
        expected = attention_mod.softmax(s / math.sqrt(d))
        got = _array(_call(attention_weights, q, K, case=case), case, "the weights",
                     shape=expected.shape)
        detectors = [
            (lambda g: not np.all(np.isfinite(g)),
             "exp overflowed (inf / inf = NaN): subtract each row's largest score before "
             "np.exp; the factor exp(-max) cancels in the ratio."),
            (_softmax_rows(s), "scale the scores by the temperature 1/sqrt(d) before the "
                               "softmax."),
            (_softmax_rows(s / d), "the temperature is 1/sqrt(d), not 1/d."),
        ]
        if s.ndim == 2:
            e = np.exp(s / math.sqrt(d) - (s / math.sqrt(d)).max(axis=0, keepdims=True))
            detectors.append((e / e.sum(axis=0, keepdims=True),
                              "normalise over the keys (the last axis, axis=-1), so that each "
                              "query's weights sum to 1."))
            e = np.exp(s / math.sqrt(d) - (s / math.sqrt(d)).max())
            detectors.append((e / e.sum(),
                              "each query gets its own softmax: sum over the last axis with "
                              "keepdims=True, not over the whole array."))
        _expect(got, expected, case, rtol=1e-6, atol=1e-12, what="weights", detectors=detectors,
                hint="z = q @ K.T / sqrt(d); z -= z.max(axis=-1, keepdims=True); "
                     "w = np.exp(z); return w / w.sum(axis=-1, keepdims=True).")
    return ("Matches tql.softmax(q @ K.T / sqrt(d)) for one query and a batch of queries, and "
            "stays finite when the scores are in the thousands.")


def _kl_ref(p, p_hat):
    p = np.asarray(p, dtype=np.float64)
    p_hat = np.asarray(p_hat, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / p_hat), 0.0)
    return terms.sum(axis=-1)


@_checker("kl_divergence")
def check_kl_divergence(kl_divergence):
    """Check ``kl_divergence(p, p_hat)``: ``sum p log(p / p_hat)`` on the last axis, in nats."""
    a = _softmax_rows(_rng(0).standard_normal((3, 20)) * 2)
    b = _softmax_rows(_rng(1).standard_normal((3, 20)) * 2)
    cases = [
        ("p = np.array([0.5, 0.5]), p_hat = np.array([0.9, 0.1])",
         np.array([0.5, 0.5]), np.array([0.9, 0.1])),
        ("p = np.array([0.7, 0.2, 0.1]), p_hat = np.array([0.7, 0.2, 0.1])  (equal)",
         np.array([0.7, 0.2, 0.1]), np.array([0.7, 0.2, 0.1])),
        ("p = np.array([0.0, 0.25, 0.75]), p_hat = np.array([0.1, 0.3, 0.6])  (a weight of 0)",
         np.array([0.0, 0.25, 0.75]), np.array([0.1, 0.3, 0.6])),
        ("p, p_hat = two (3, 20) arrays of softmax weights (3 queries; one KL per row)", a, b),
    ]
    for case, p, q in cases:
        expected = _kl_ref(p, q)
        got = _call(kl_divergence, p, q, case=case)
        if p.ndim == 2 and np.size(got) == 1:
            raise _Failure("one KL per row (per query) is expected, got a single number",
                           case=case, expected=expected, got=got,
                           hint="sum over the last axis only: np.sum(..., axis=-1).")
        got = _array(got, case, "the KL divergence", shape=expected.shape)
        with np.errstate(all="ignore"):
            detectors = [
                (lambda g: not np.all(np.isfinite(g)),
                 "a weight p_j = 0 contributes 0 (the limit of p log p): 0 * log(0) is NaN in "
                 "NumPy, so skip those terms (np.where(p > 0, ...), or scipy.special.xlogy)."),
                (_kl_ref(q, p), "KL is not symmetric: KL(p || p_hat) weighs the log-ratio "
                                "log(p / p_hat) by the exact weights p."),
                (_kl_ref(p, q) / math.log(2), "use the natural log (nats), np.log, not "
                                              "np.log2."),
                (lambda g: _close(g, _kl_ref(p, q) / p.shape[-1], 1e-6, 1e-12) and
                 not _close(expected, 0.0), "sum the terms over the keys, don't average them."),
            ]
        _expect(got, expected, case, rtol=1e-6, atol=1e-12, what="KL", detectors=detectors,
                hint="np.sum(np.where(p > 0, p * np.log(p / p_hat), 0.0), axis=-1).")
    return ("Matches sum p log(p / p_hat) over the last axis for single and batched weights, "
            "is 0 for equal weights and handles weights of 0.")


def _unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _pairs(n, d, seed):
    rng = _rng(seed)
    x = _unit(rng.standard_normal((n, d)))
    y = _unit(x + rng.standard_normal((n, d)) / math.sqrt(d))
    return x, y


@_checker("inner_product_ratio")
def check_inner_product_ratio(inner_product_ratio):
    """Check ``inner_product_ratio(x, y, bits, seed)``: ``sum <y, x_hat> / sum <y, x>``."""
    for n, d, bits, seed in [(400, 64, 1, 0), (400, 128, 2, 1), (300, 128, 3, 2), (200, 32, 4, 3)]:
        x, y = _pairs(n, d, seed)
        case = (f"x, y = {n} pairs of unit vectors in d = {d} (x, y = pairs({n}, {d}, "
                f"seed={seed}) in the cell above), bits = {bits}, seed = {seed}")
        tq = turboquant.TurboQuantMSE(d, bits, seed=seed)
        x_hat = np.asarray(tq.decode(tq.encode(x)), dtype=np.float64)
        ip, ip_hat = np.sum(x * y, axis=1), np.sum(x_hat * y, axis=1)
        expected = float(ip_hat.sum() / ip.sum())
        got = _number(_call(inner_product_ratio, x, y, bits, seed, case=case), case)
        _expect(got, expected, case, rtol=2e-4, atol=1e-6, detectors=[
            (float(np.mean(ip_hat / ip)), "return the ratio of the sums, sum <y, x_hat> / "
                                          "sum <y, x> (it estimates E<y, x_hat> / <y, x>), not "
                                          "the mean of the per-pair ratios, a different and "
                                          "noisier estimator (it explodes where <y, x> is "
                                          "near 0)."),
            (1.0 / expected, "it is estimate over truth: sum <y, x_hat> / sum <y, x>."),
            (float(np.mean(np.linalg.norm(x_hat, axis=1))),
             "that is the length of x_hat; the question is how the inner products with y "
             "shrink."),
            (float(np.sum(x_hat * x) / np.sum(x * x)), "use the queries y: <y, x_hat> against "
                                                       "<y, x>."),
        ], hint="tq = tql.TurboQuantMSE(d, bits, seed=seed); x_hat = tq.decode(tq.encode(x)); "
                "return np.sum(x_hat * y) / np.sum(x * y).")
    return ("Matches sum <y, x_hat> / sum <y, x> with tql.TurboQuantMSE for 1 to 4 bits and "
            "d = 32 to 128.")


def _qjl_ref(r, y, S):
    r = np.asarray(r, dtype=np.float64)
    S = np.asarray(S, dtype=np.float64)
    m = S.shape[0]
    z = np.where(r @ S.T >= 0, 1.0, -1.0)
    return math.sqrt(math.pi / 2) / m * np.linalg.norm(r, axis=-1) * (z @ (S @ y))


@_checker("qjl_estimate")
def check_qjl_estimate(qjl_estimate):
    """Check ``qjl_estimate(r, y, S)``: ``sqrt(pi/2) / m * ||r|| * <sign(S r), S y>`` per row."""
    cases = []
    rng = _rng(11)
    r, y, S = rng.standard_normal((6, 16)), rng.standard_normal(16), rng.standard_normal((16, 16))
    cases.append(("r, y, S = (6, 16), (16,), (16, 16) Gaussian arrays from "
                  "np.random.default_rng(11)", r, y, S))
    rng = _rng(12)
    r, y = 3 * rng.standard_normal((4, 32)), rng.standard_normal(32)
    S = rng.standard_normal((64, 32))
    cases.append(("r = 3 * (4, 32), y = (32,), S = (64, 32) Gaussian from "
                  "np.random.default_rng(12)  (m = 64 sketch rows, not d)", r, y, S))
    for case, r, y, S in cases:
        expected = _qjl_ref(r, y, S)
        got = _array(_call(qjl_estimate, r, y, S, case=case), case, "the estimates",
                     shape=expected.shape)
        m, d = S.shape
        norm = np.linalg.norm(r, axis=-1)
        dots = np.where(r @ S.T >= 0, 1.0, -1.0) @ (S @ y)
        _expect(got, expected, case, rtol=1e-6, atol=1e-9, what="estimates", detectors=[
            (expected * math.sqrt(2 / math.pi), "the scale is sqrt(pi/2) / m, not 1 / m: the "
                                                "sign keeps only sqrt(2/pi) of each projection "
                                                "on average, so multiply by its inverse."),
            (expected * 2 / math.pi, "multiply by sqrt(pi/2) (the inverse of E|g| = "
                                     "sqrt(2/pi)), not by sqrt(2/pi)."),
            (expected / norm, "multiply by ||r||: the signs forget the length of r, so it is "
                              "stored beside them."),
            (expected * m, "divide by m, the number of sketch rows (S.shape[0])."),
            (expected * m / d if m != d else np.nan,
             "divide by the number of sketch rows m = S.shape[0], which need not be d."),
            (math.sqrt(math.pi / 2) / m * norm * (np.where(r @ S.T >= 0, 1.0, -1.0)
                                                  @ np.sign(S @ y)),
             "only the stored vector is reduced to signs: keep the query side S y exact."),
            (math.sqrt(math.pi / 2) / m * norm * dots / np.linalg.norm(y),
             "use y as it is, not y / ||y||."),
        ], hint="z = np.sign(r @ S.T) (one row of signs per vector); return "
                "np.sqrt(np.pi / 2) / S.shape[0] * np.linalg.norm(r, axis=-1) * (z @ (S @ y)).")
    # the library's plain QJL sketch (bits = 1: no MSE stage, r = x; norms stored as float16)
    d = 64
    prod = turboquant.TurboQuantProd(d, 1, seed=5)
    x = data.make_kv_vectors(50, d, seed=5).astype(np.float64)
    y = _rng(13).standard_normal(d)
    case = ("r = tql.make_kv_vectors(50, 64, seed=5), y = np.random.default_rng(13)"
            ".standard_normal(64), S = tql.TurboQuantProd(64, bits=1, seed=5).S")
    lib = np.asarray(prod.inner_product(prod.encode(x), y), dtype=np.float64)
    got = _array(_call(qjl_estimate, x, y, prod.S.astype(np.float64), case=case), case,
                 "the estimates", shape=lib.shape)
    if not _close(got, lib, 2e-3, 1e-3 * float(np.abs(lib).max())):
        raise _Failure("different from the library's 1-bit sketch", case=case, expected=lib,
                       got=got, what="estimates",
                       hint="tql.TurboQuantProd(d, bits=1).inner_product is this estimator "
                            "(with ||r|| rounded to float16): see its Notes.")
    return ("Matches sqrt(pi/2) / m * ||r|| * <sign(S r), S y> for square and tall sketch "
            "matrices, and tql.TurboQuantProd(d, bits=1).inner_product up to its float16 norms.")


# ======================================================================================
# Lesson 11: real KV caches
# ======================================================================================

__all__ += [
    # lesson 11
    "check_channel_rms", "check_outlier_channels", "check_max_over_mean_rotated",
    "check_storage_and_error",
]


@functools.lru_cache(maxsize=1)
def _real_keys():
    """The real keys of the shipped sample as read-only float64, (layers, heads, tokens, d)."""
    keys = data.load_kv_sample().keys.astype(np.float64)
    keys.flags.writeable = False
    return keys


def _rms(x):
    return np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2, axis=-2))


@_checker("channel_rms")
def check_channel_rms(channel_rms):
    """Check ``channel_rms(keys)``: the RMS over the tokens of each channel, ``(..., n, d)``."""
    keys = _real_keys()
    cases = [
        ("keys = np.array([[1.0, -2.0, 0.0], [3.0, 2.0, 0.0]])  (2 tokens, 3 channels)",
         np.array([[1.0, -2.0, 0.0], [3.0, 2.0, 0.0]])),
        ("keys = sample.keys[2, 3].astype(np.float64)  (one head: 256 tokens x 32 channels)",
         np.array(keys[2, 3])),
        ("keys = sample.keys.astype(np.float64)  (every layer and head: (6, 12, 256, 32))",
         np.array(keys)),
        ("keys = tql.make_kv_vectors(300, 64, seed=2)",
         data.make_kv_vectors(300, 64, seed=2).astype(np.float64)),
    ]
    for case, x in cases:
        expected = _rms(x)
        got = _call(channel_rms, x, case=case)
        if np.shape(got) == x.shape[:-1] and x.shape[-2] != x.shape[-1]:
            raise _Failure(f"got one number per token (shape {np.shape(got)}), expected one per "
                           f"channel {expected.shape}", case=case,
                           hint="average over the tokens, the second-to-last axis: "
                                "np.mean(x ** 2, axis=-2).")
        got = _array(got, case, "the channel RMS", shape=expected.shape)
        _expect(got, expected, case, rtol=1e-6, atol=1e-12, what="RMS", detectors=[
            (np.std(x, axis=-2), "the RMS keeps the channel's mean: sqrt(mean(x**2)), not the "
                                 "standard deviation, which subtracts it (and real keys have "
                                 "large channel means)."),
            (np.mean(x ** 2, axis=-2), "take the square root of the mean square."),
            (np.mean(np.abs(x), axis=-2), "root mean square: sqrt(mean(x**2)), not mean(|x|)."),
            (np.sqrt(np.sum(x ** 2, axis=-2)), "the mean of the squares, not their sum: divide "
                                               "by the number of tokens."),
        ], hint="np.sqrt(np.mean(keys ** 2, axis=-2)).")
    return ("Matches sqrt(mean(keys**2, axis=-2)) for one head, every head at once and "
            "synthetic keys.")


def _outliers(x, factor):
    rms = _rms(x)
    return np.flatnonzero(rms > factor * np.median(rms))


def _outlier_variants(x, factor):
    """Typical slips: (hint, channels) for the mean instead of the median, std instead of RMS."""
    rms, std = _rms(x), np.std(x, axis=-2)
    return [
        ("compare with the median channel RMS, not the mean: a few big channels pull the mean "
         "up (and hide themselves).", np.flatnonzero(rms > factor * rms.mean())),
        ("use the RMS of each channel (exercise 11.1), not its standard deviation: the "
         "channel means are part of what makes a channel large.",
         np.flatnonzero(std > factor * np.median(std))),
        ("use the RMS of each channel (exercise 11.1) and the median: "
         "rms > factor * np.median(rms).", np.flatnonzero(std > factor * std.mean())),
    ]


@_checker("outlier_channels")
def check_outlier_channels(outlier_channels):
    """Check ``outlier_channels(keys, factor)``: channels with RMS above factor x the median."""
    keys = _real_keys()
    syn = data.make_kv_vectors(500, 64, seed=3).astype(np.float64)
    cases = [
        ("keys = tql.make_kv_vectors(500, 64, seed=3), factor = 3.0  (5 outlier channels)",
         syn, 3.0),
        ("keys = sample.keys[5, 4].astype(np.float64), factor = 2.0", np.array(keys[5, 4]), 2.0),
        ("keys = sample.keys[2, 3].astype(np.float64), factor = 2.0", np.array(keys[2, 3]), 2.0),
        ("keys = sample.keys[0, 0].astype(np.float64), factor = 2.0  (no outlier channel)",
         np.array(keys[0, 0]), 2.0),
        ("keys = sample.keys[2, 3].astype(np.float64), factor = 1.5", np.array(keys[2, 3]), 1.5),
    ]
    answers = []
    for case, x, factor in cases:
        expected = _outliers(x, factor)
        got = _call(outlier_channels, x, factor, case=case)
        g = np.asarray(got) if got is not None else None
        if g is not None and g.dtype == bool:
            raise _Failure("your function returned a boolean mask", case=case, expected=expected,
                           hint="return the channel indices: np.flatnonzero(mask) (or "
                                "np.nonzero(mask)[0]).")
        g = _array(got, case, "the channel indices")
        if g.ndim != 1:
            raise _Failure(f"return a 1-D array of channel indices, got shape {g.shape}",
                           case=case, expected=expected, got=g,
                           hint="np.flatnonzero(rms > factor * np.median(rms)).")
        if g.size and np.any(np.diff(g) < 0) and np.array_equal(np.sort(g), expected):
            raise _Failure("the right channels, but not in ascending order", case=case,
                           expected=expected, got=g, hint="return them sorted (np.sort).")
        answers.append(g)
    wrong = [i for i, (g, (_, x, f)) in enumerate(zip(answers, cases))
             if not (g.shape == _outliers(x, f).shape and np.array_equal(g, _outliers(x, f)))]
    if not wrong:
        return ("Finds the five outlier channels of the synthetic keys and the mild ones of "
                "real heads (none where there are none).")
    # the slip that explains every answer, if there is one
    hint = "rms = np.sqrt(np.mean(keys ** 2, axis=0)); return np.flatnonzero(rms > factor * " \
           "np.median(rms))."
    for k in range(len(_outlier_variants(syn, 3.0))):
        if all(np.array_equal(g, _outlier_variants(x, f)[k][1])
               for g, (_, x, f) in zip(answers, cases)):
            hint = _outlier_variants(syn, 3.0)[k][0]
            break
    case, x, factor = cases[wrong[0]]
    expected, g = _outliers(x, factor), answers[wrong[0]]
    raise _Failure(f"{expected.size} outlier channel(s) expected, got {g.size}"
                   if g.size != expected.size else "the channels differ", case=case,
                   expected=expected, got=g, what="channels", hint=hint)


def _mom(x):
    a = np.abs(x)
    return a.max(axis=-1) / a.mean(axis=-1)


@_checker("max_over_mean_rotated")
def check_max_over_mean_rotated(max_over_mean_rotated):
    """Check ``max_over_mean_rotated(x, seed)``: per-vector max|x|/mean|x|, before and after."""
    keys = _real_keys()
    cases = [
        ("x = tql.make_kv_vectors(200, 64, seed=0), seed = 0",
         data.make_kv_vectors(200, 64, seed=0).astype(np.float64), 0),
        ("x = sample.keys[3].reshape(-1, 32).astype(np.float64)  (layer 3, all heads), seed = 1",
         np.array(keys[3]).reshape(-1, 32), 1),
        ("x = np.random.default_rng(4).standard_normal((100, 128)), seed = 2",
         _rng(4).standard_normal((100, 128)), 2),
    ]
    for case, x, seed in cases:
        n, d = x.shape
        rot = rotation.RandomizedHadamard(d, seed=seed)
        before, after = _mom(x), _mom(rot.forward(x))
        out = _call(max_over_mean_rotated, x, seed, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise _Failure("return two arrays: (before, after)", case=case, got=out,
                           hint="end with `return before, after`.")
        b, a = out
        for name, value, expected in (("before", b, before), ("after", a, after)):
            if np.size(value) == 1 and n > 1:
                raise _Failure(f"{name} should hold one ratio per vector ({n}), got one number",
                               case=case, expected=expected, got=value,
                               hint="compute the ratio along the last axis (axis=-1) and "
                                    "don't average over the vectors.")
            value = _array(value, case, name, shape=(n,))
            _expect(value, expected, case, rtol=1e-5, atol=1e-9, what=name, detectors=[
                (_mom(hadamard.fwht(x)), "rotate with the randomized Hadamard, signs included: "
                                         "tql.RandomizedHadamard(d, seed=seed).forward(x), not "
                                         "the plain tql.fwht."),
                (np.max(x, -1) / np.mean(x, -1) if name == "before" else np.nan,
                 "use magnitudes: np.abs(x).max(axis=-1) / np.abs(x).mean(axis=-1)."),
                (_mom(rotation.RandomizedHadamard(d, seed=0).forward(x)) if seed else np.nan,
                 "use the seed you are given: tql.RandomizedHadamard(d, seed=seed)."),
                (_mom(x @ rotation.RandomizedHadamard(d, seed=seed).matrix())
                 if name == "after" else np.nan,
                 "rotate each row with .forward(x); x @ matrix() applies the transpose."),
            ], hint="r = lambda v: np.abs(v).max(-1) / np.abs(v).mean(-1); return r(x), "
                    "r(tql.RandomizedHadamard(x.shape[-1], seed=seed).forward(x)).")
    return ("Before and after the randomized Hadamard, per vector, for synthetic outlier "
            "vectors, real keys and Gaussian vectors.")


def _storage_error_ref(x, bits, method, seed):
    d = x.shape[-1]
    if method == "uniform":
        x_hat = uniform.uniform_dequantize(uniform.uniform_quantize(x, bits))
        bpc = bits + 32 / d
    else:
        tq = turboquant.TurboQuantMSE(d, bits, seed=seed)
        enc = tq.encode(x)
        x_hat = np.asarray(tq.decode(enc), dtype=np.float64)
        bpc = enc.bits_per_coordinate
    err = np.sum((x - x_hat) ** 2, axis=-1)
    energy = np.sum(x ** 2, axis=-1)
    return bpc, float(err.sum() / energy.sum()), x_hat


@_checker("storage_and_error")
def check_storage_and_error(storage_and_error):
    """Check ``storage_and_error(x, bits, method, seed)``: (bits per coordinate, relative MSE)."""
    keys = _real_keys()
    real = np.array(keys).reshape(-1, keys.shape[-1])
    syn = data.make_kv_vectors(500, 64, seed=6).astype(np.float64)
    cases = [("x = sample.keys.reshape(-1, 32).astype(np.float64)", real, 3, "uniform"),
             ("x = sample.keys.reshape(-1, 32).astype(np.float64)", real, 3, "turboquant"),
             ("x = tql.make_kv_vectors(500, 64, seed=6)", syn, 2, "uniform"),
             ("x = tql.make_kv_vectors(500, 64, seed=6)", syn, 4, "turboquant"),
             ("x = sample.keys.reshape(-1, 32).astype(np.float64)", real, 1, "turboquant")]
    for text, x, bits, method in cases:
        case = f"{text}, bits = {bits}, method = {method!r}, seed = 0"
        bpc, rel, x_hat = _storage_error_ref(x, bits, method, 0)
        out = _call(storage_and_error, x, bits, method, 0, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise _Failure("return two numbers: (bits_per_coordinate, rel_mse)", case=case,
                           got=out, hint="end with `return bits_per_coordinate, rel_mse`.")
        got_bpc = _number(out[0], case, "bits_per_coordinate")
        got_rel = _number(out[1], case, "rel_mse")
        d = x.shape[-1]
        side = ("the uniform quantizer stores lo and scale per vector, two float16 numbers: "
                "bits + 2 * 16 / d." if method == "uniform" else
                "TurboQuant stores each vector's norm as float16: use the Encoded's "
                ".bits_per_coordinate (bits + 16 / d here).")
        _expect(got_bpc, bpc, case, what="bits_per_coordinate", rtol=1e-9, atol=1e-9, detectors=[
            (float(bits), "count the side information too: " + side),
            (bits + 64 / d, "store lo and scale as float16 (16 bits each, like TurboQuant's "
                            "norm), not float32."),
            (bits + 16 / d if method == "uniform" else np.nan,
             "there are two side numbers per vector, lo and scale: 2 * 16 / d."),
        ], hint=side)
        err = np.sum((x - x_hat) ** 2, axis=-1)
        energy = np.sum(x ** 2, axis=-1)
        _expect(got_rel, rel, case, what="rel_mse", rtol=1e-3, atol=1e-9, detectors=[
            (float(np.mean(err / energy)), "pool before dividing: sum of ||x - x_hat||^2 over "
                                           "all vectors / sum of ||x||^2, not the mean of "
                                           "per-vector ratios."),
            (float(np.mean((x - x_hat) ** 2)), "relative: divide by the energy of x, "
                                               "np.sum(x ** 2)."),
            (float(np.sum(np.abs(x - x_hat)) / np.sum(np.abs(x))), "squared errors: "
                                                                  "np.sum((x - x_hat) ** 2)."),
        ], hint="rel_mse = np.sum((x - x_hat) ** 2) / np.sum(x ** 2); x_hat from "
                "tql.uniform_dequantize(tql.uniform_quantize(x, bits)) or "
                "tq.decode(tq.encode(x)) with tq = tql.TurboQuantMSE(d, bits, seed=seed).")
    return ("Storage (side information included) and relative MSE match for the uniform and "
            "the TurboQuant quantizer on real and synthetic keys, 1 to 4 bits.")
