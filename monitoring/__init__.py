"""Metric definitions, the Prometheus and Grafana files that use them, and the container health probe."""
