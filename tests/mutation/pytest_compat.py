"""A pytest plugin loaded only under mutmut (`[tool.mutmut] pytest_add_cli_args`).

mutmut 3 (up to 3.8) records which test reached a mutated function through ``item._nodeid``;
pytest 9 keeps the id elsewhere and exposes it as ``nodeid`` only. The alias below restores it.
"""

from __future__ import annotations

from _pytest import nodes

if not hasattr(nodes.Node, "_nodeid"):
    nodes.Node._nodeid = property(lambda self: self.nodeid)  # type: ignore[attr-defined]
