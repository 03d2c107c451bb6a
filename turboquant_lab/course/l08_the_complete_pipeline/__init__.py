"""Lesson 08, the complete pipeline: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
