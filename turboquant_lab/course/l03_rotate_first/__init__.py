"""Lesson 03, rotate first: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
