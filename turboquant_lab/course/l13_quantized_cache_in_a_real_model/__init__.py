"""Lesson 13, a quantized cache in a real model: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
