"""The course: one package per lesson (lNN_name/), and what the lessons share (_ui, _checking).

Nothing in the library imports this package; the notebooks do.
"""
