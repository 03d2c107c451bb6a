"""Shared by the checker tests: a stub like the exercises' and verdict assertions."""
from turboquant_lab.course import _checking as checks
from turboquant_lab.course._checking import FAILED, PASSED


def stub(*args, **kwargs):
    raise NotImplementedError("your code here")


def assert_passes(checker, *fns):
    v = checker(*fns)
    assert isinstance(v, checks.Verdict)
    assert v.status == PASSED, v.message
    assert bool(v)


def assert_fails(checker, *fns, hint):
    v = checker(*fns)
    assert v.status == FAILED, v.message
    assert not v
    assert hint in v.hint, f"expected a hint containing {hint!r}, got:\n{v.message}"
