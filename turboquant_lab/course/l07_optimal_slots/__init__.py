"""Lesson 07, optimal slots (Lloyd-Max): experiments (NumPy), figures (matplotlib), app (ipywidgets), checks (exercises)."""
