"""Lesson 12, PolarQuant: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
