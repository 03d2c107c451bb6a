"""Lesson 06, random signs: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
