"""Lesson 05, the Walsh-Hadamard transform: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
