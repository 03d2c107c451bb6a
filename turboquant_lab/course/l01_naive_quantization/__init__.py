"""Lesson 01, naive quantization: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
