"""Native thread pools of the scorer process (OpenMP, BLAS), pinned when an engine starts.

A scorer scores small batches on a shared machine: scikit-learn's OpenMP loops
(gradient boosting) and BLAS would start a thread per core for each batch and
compete with the Kafka client threads and the other processes for the same cores.
``threadpoolctl`` (a scikit-learn dependency) limits the pools of the libraries
already loaded, so it runs after the model is loaded.
"""

from __future__ import annotations

import logging

from threadpoolctl import threadpool_info, threadpool_limits

log = logging.getLogger(__name__)


def pin_native_threads(threads: int) -> dict[str, int]:
    """Limit every loaded native thread pool to ``threads`` (0: leave them as they are).

    Returns the pools' sizes afterwards, by library (``libgomp``, ``libopenblas``...).
    """
    if threads > 0:
        threadpool_limits(limits=threads)
    pools = {str(pool["prefix"]): int(pool["num_threads"]) for pool in threadpool_info()}
    log.info("native thread pools: %s", pools or "none loaded")
    return pools
