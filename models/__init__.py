"""The model registry, the scoring core (``Predictor``), the live model a serving process reloads,
and figures read from a version's manifest."""
