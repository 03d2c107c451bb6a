"""Lesson 02, the outlier problem: experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
