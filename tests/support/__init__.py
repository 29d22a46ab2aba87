"""Helpers shared by the tests: a broker toolbox, a real Prometheus, TLS material, bad records, ..."""
