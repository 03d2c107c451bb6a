"""Lesson 10, inner products and QJL: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
