"""The model registry and the scoring core (``Predictor``)."""
