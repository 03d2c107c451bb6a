"""The exercise-checker machinery shared by every lesson: the registry, stubs, docstrings."""
import pytest
from checker_helpers import stub

from turboquant_lab.course._checking import NOT_ATTEMPTED, all_checkers

CHECKERS = all_checkers()


def test_every_lesson_with_exercises_registers_checkers():
    lessons = {c.__module__.split(".")[2] for c in CHECKERS.values()}
    assert lessons == {f"l{n:02d}_{name}" for n, name in [
        (1, "naive_quantization"), (2, "the_outlier_problem"), (3, "rotate_first"),
        (4, "distribution_after_rotation"), (5, "walsh_hadamard_transform"), (6, "random_signs"),
        (7, "optimal_slots"), (8, "the_complete_pipeline"), (9, "the_gpu_kernel"),
        (10, "inner_products_and_qjl"), (11, "real_kv_caches")]}
    assert len(CHECKERS) >= 3 * len(lessons)


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_checker_is_documented_and_says_not_attempted_for_the_stub(name):
    checker = CHECKERS[name]
    assert checker.__doc__
    n_args = 2 if name == "check_roundtrip" else 1
    v = checker(*([stub] * n_args))
    assert v.status == NOT_ATTEMPTED, v.message
