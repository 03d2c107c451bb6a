"""Lesson 04, the distribution after rotation: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
