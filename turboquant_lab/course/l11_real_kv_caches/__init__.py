"""Lesson 11, real KV caches: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
