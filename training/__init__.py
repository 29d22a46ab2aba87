"""Training: load or generate data, train candidates, evaluate, select, write artifacts."""
