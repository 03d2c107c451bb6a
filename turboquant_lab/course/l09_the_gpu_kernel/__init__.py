"""Lesson 09, the GPU kernel: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
