"""The scorer pins the native thread pools it has loaded (CHURN_SCORER_THREADS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap


def _pools_after(threads: int) -> dict[str, int]:
    # A child process: the limit is process-wide and would outlive this test otherwise.
    code = textwrap.dedent(
        f"""
        import json
        import sklearn.ensemble  # loads OpenMP, as a loaded model does
        import numpy  # and BLAS
        from scorer.threads import pin_native_threads
        print(json.dumps(pin_native_threads({threads})))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_every_loaded_pool_is_pinned_to_one_thread() -> None:
    pools = _pools_after(1)
    assert pools, "no native pool was found loaded"
    assert set(pools.values()) == {1}


def test_zero_leaves_the_pools_alone() -> None:
    pinned, unpinned = _pools_after(1), _pools_after(0)
    assert set(unpinned) == set(pinned)
    if len(os.sched_getaffinity(0)) > 1:  # the libraries' own default: a thread per core
        assert max(unpinned.values()) > 1
