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
>>> from turboquant_lab.course.l01_naive_quantization.checks import check_levels
>>> def levels(lo, hi, bits):
...     return lo + np.arange(2 ** bits) * (hi - lo) / (2 ** bits - 1)
>>> verdict = check_levels(levels)  # doctest: +ELLIPSIS
✔ levels: passed. ...
>>> bool(verdict), verdict.status
(True, 'passed')
"""
from __future__ import annotations

import functools
import textwrap
import warnings
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import numpy as np

__all__ = [
    "PASSED", "FAILED", "NOT_ATTEMPTED", "Verdict", "NotAttempted", "Failure", "call_learner",
    "CHECKERS", "all_checkers", "checker", "as_array", "as_number", "allclose", "first_hint", "expect",
    "seeded_rng",
]

PASSED = "passed"


FAILED = "failed"


NOT_ATTEMPTED = "not attempted"


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


class NotAttempted(Exception):
    """The learner's function still raises the stub's NotImplementedError."""


class Failure(Exception):
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


def call_learner(fn, *args, case: str = "", copy: bool = True, **kwargs):
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
        raise NotAttempted() from None
    except Exception as exc:  # anything the learner's code raises is reported, never raised
        raise Failure(f"your function raised {type(exc).__name__}: {exc}", case=case,
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


CHECKERS: dict = {}
"""Every checker, by function name (``check_levels``, ...), registered by :func:`checker`
when its lesson's ``checks`` module is imported; :func:`all_checkers` imports them all."""


def all_checkers() -> dict:
    """Import every lesson's ``checks`` module and return :data:`CHECKERS` (name -> checker)."""
    course = Path(__file__).resolve().parent
    for folder in sorted(course.glob("l[0-9][0-9]_*")):
        if (folder / "checks.py").exists():
            import_module(f"{__package__}.{folder.name}.checks")
    return dict(CHECKERS)


def checker(name: str):
    """Turn ``grader(*fns) -> summary`` into a checker that prints a verdict and never raises.

    The checker is registered in :data:`CHECKERS` under its function name.
    """
    def decorate(grader):
        @functools.wraps(grader)
        def check(*fns):
            try:
                for fn in fns:
                    if not callable(fn):
                        raise Failure(f"expected a function, got {type(fn).__name__}",
                                       hint=f"pass the function itself, without calling it: "
                                            f"{grader.__name__}(my_function), not "
                                            f"{grader.__name__}(my_function()).")
                summary = grader(*fns)
                verdict = Verdict(name, PASSED, f"✔ {name}: passed. {summary}")
            except NotAttempted:
                verdict = Verdict(name, NOT_ATTEMPTED,
                                  f"… {name}: not attempted yet. Replace the line "
                                  f"`raise NotImplementedError(...)` with your code, run that "
                                  f"cell, then this one.")
            except Failure as failure:
                verdict = Verdict(name, FAILED, failure.render(name), failure.hint)
            except Exception as exc:  # what the learner returned could not even be compared
                failure = Failure(f"the check could not use what your function returned "
                                   f"({type(exc).__name__}: {exc})",
                                   hint="return what the docstring asks for: its type and shape.")
                verdict = Verdict(name, FAILED, failure.render(name), failure.hint)
            print(verdict.message)
            return verdict
        check.__name__ = grader.__name__
        CHECKERS[check.__name__] = check
        return check
    return decorate


def as_array(got, case: str, what: str = "the result", shape=None, kind: str | None = None):
    """``got`` as an ndarray of the expected shape (and kind: "f" float, "i" integer), or fail."""
    if got is None:
        raise Failure(f"your function returned None instead of {what}", case=case,
                       hint="did you forget the `return` line?")
    if isinstance(got, tuple) and shape is not None and len(shape) >= 1 and len(got) != shape[0]:
        raise Failure(f"your function returned a tuple of {len(got)} items instead of {what}",
                       case=case, hint="return a single array.")
    try:
        a = np.asarray(got)
    except Exception:
        raise Failure(f"{what} is not an array (got {type(got).__name__})", case=case,
                       hint="return a NumPy array.") from None
    if a.dtype.kind not in "biuf":
        raise Failure(f"{what} should hold numbers, got dtype {a.dtype}", case=case,
                       hint="return a NumPy array of numbers.")
    if shape is not None and a.shape != tuple(shape):
        raise Failure(f"{what} has shape {a.shape}, expected {tuple(shape)}", case=case,
                       hint="compare your loop limits or reshape with the expected shape.")
    if kind == "i" and a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            raise Failure(f"{what} holds whole numbers but as floats ({a.dtype})", case=case,
                           hint="codes are integers: convert with .astype(np.uint8) "
                                "(or another integer dtype) before returning.")
        raise Failure(f"{what} should be integers, got dtype {a.dtype}", case=case,
                       hint="codes are integers: round, then .astype(np.uint8).")
    return a


def as_number(got, case: str, what: str = "the result") -> float:
    """``got`` as a Python float (a number or a 1-element array), or fail."""
    if got is None:
        raise Failure(f"your function returned None instead of {what}", case=case,
                       hint="did you forget the `return` line?")
    try:
        a = np.asarray(got, dtype=np.float64)
    except Exception:
        raise Failure(f"{what} should be a number, got {type(got).__name__}", case=case,
                       hint="return a single number (a float).") from None
    if a.size != 1:
        raise Failure(f"{what} should be one number, got an array of shape {a.shape}",
                       case=case, hint="reduce it to one number (e.g. with .max() or .mean()).")
    return float(a.reshape(()))


def allclose(a, b, rtol=1e-6, atol=1e-9) -> bool:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def first_hint(got, detectors, default: str) -> str:
    """The message of the first ``(buggy_value_or_predicate, message)`` that ``got`` matches."""
    for detector, message in detectors:
        try:
            hit = detector(got) if callable(detector) else allclose(got, detector, 1e-5, 1e-8)
        except Exception:
            hit = False
        if hit:
            return message
    return default


def expect(got, expected, case: str, *, what: str = "", rtol=1e-6, atol=1e-9,
            detectors=(), hint: str = "", problem: str = ""):
    """Fail unless ``got`` is close to ``expected``; pick the hint from the detectors."""
    if allclose(got, expected, rtol, atol):
        return
    g = np.asarray(got, dtype=np.float64)
    if g.size and not np.all(np.isfinite(g)):
        problem = problem or "your result contains NaN or Inf"
    raise Failure(problem, case=case, expected=expected, got=got, what=what,
                   hint=first_hint(got, detectors, hint))


def seeded_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)
