"""The model registry, the scoring core (``Predictor``) and the live model a serving process reloads."""
