"""Benchmarks and their harnesses: ``churn bench stream|api|chaos``, the Quix Streams peer, a load generator.

Shipped with the distribution; the Quix Streams peer and profiling need the ``bench`` extra.
Nothing in the runtime packages imports this package.
"""
