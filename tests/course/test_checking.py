"""The exercise-checker machinery shared by every lesson: the registry, stubs, docstrings."""
from pathlib import Path

import pytest
from checker_helpers import stub

from turboquant_lab.course._checking import NOT_ATTEMPTED, all_checkers

ROOT = Path(__file__).resolve().parents[2]
CHECKERS = all_checkers()
# every lesson with an exercise notebook (solutions/NN_name.ipynb) has a course/lNN_name/checks.py
EXERCISE_LESSONS = sorted(f"l{p.stem}" for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def test_every_lesson_with_exercises_registers_its_checkers():
    assert len(EXERCISE_LESSONS) >= 11
    by_lesson = {}
    for c in CHECKERS.values():
        by_lesson.setdefault(c.__module__.split(".")[2], []).append(c)
    assert sorted(by_lesson) == EXERCISE_LESSONS
    for lesson, checkers in by_lesson.items():
        assert len(checkers) >= 3, f"{lesson}: at least three exercises, each with a checker"


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_checker_is_documented_and_says_not_attempted_for_the_stub(name):
    checker = CHECKERS[name]
    assert checker.__doc__
    n_args = 2 if name == "check_roundtrip" else 1
    v = checker(*([stub] * n_args))
    assert v.status == NOT_ATTEMPTED, v.message
