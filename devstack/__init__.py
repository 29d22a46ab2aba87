"""The development stack: the embedded broker, ``churn`` child processes and ``churn up``.

Used by the ``churn broker`` and ``churn up`` commands, the benchmarks and the tests;
nothing in the runtime packages imports it.
"""
