"""The library's argument checks, public for the layers above core.

Clear errors that name the argument and the fix (``TypeError`` for a wrong
kind, ``ValueError`` for a wrong value). Core modules import them from the
private ``_validate``; this module re-exports the same functions, so that
:mod:`turboquant_lab.gpu` (and the course) raise exactly the messages the
NumPy path raises without reaching into a private module.

Examples
--------
>>> check_power_of_two(64, "d")
64
>>> check_bits(9)
Traceback (most recent call last):
    ...
ValueError: bits must be between 1 and 8, got 9
"""
from ._validate import (
                        MAX_BITS,
                        MIN_BITS,
                        as_float_array,
                        check_bits,
                        check_dim,
                        check_last_axis,
                        check_power_of_two,
                        ensure_finite,
                        is_power_of_two,
                        make_rng,
                        next_power_of_two,
)

__all__ = ["as_float_array", "ensure_finite", "check_bits", "check_dim", "check_last_axis",
           "check_power_of_two", "is_power_of_two", "next_power_of_two", "make_rng", "MIN_BITS", "MAX_BITS"]
