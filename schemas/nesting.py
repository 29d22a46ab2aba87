"""How deeply a JSON text nests, measured without parsing it (so without recursion).

A customer event is one flat object (depth 1). Parsers that recurse — the
standard ``json`` module, which the scorer's repeated-key check uses, and
anything walking the parsed value — fail on, or spend a stack frame per level
of, a record nested a thousand levels deep; orjson itself stops at 1,024. So
records nested deeper than :data:`MAX_NESTING_DEPTH` are refused (``too_deep``)
before anything parses them: a generous limit for events, which only an attacker
or a broken producer reaches.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Final

#: Deepest nesting of arrays and objects a record may have (a valid event has 1).
MAX_NESTING_DEPTH: Final = 64

#: A complete JSON string literal; possessive, so an unterminated string cannot backtrack.
_STRING: Final = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
#: Opening brackets to +1 and closing ones to -1 (as signed bytes); every other byte is deleted.
_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_depth(text: bytes) -> int:
    """The deepest nesting of ``[``/``{`` outside string literals (0 for a scalar).

    Linear in the length of ``text`` and in C. Brackets after an unterminated string
    count as structure, and a closer without its opener lowers the count: both only
    misjudge text that is not JSON, which orjson refuses before anything recurses.
    """
    if text.count(b"[") + text.count(b"{") <= 1:
        return 1 if b"[" in text or b"{" in text else 0
    brackets = _STRING.sub(b"", text).translate(_STEPS, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(memoryview(brackets).cast("b"))))


def too_deep(text: bytes, limit: int = MAX_NESTING_DEPTH) -> bool:
    """Whether ``text`` nests deeper than ``limit``; cheap when it cannot (few brackets)."""
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    return nesting_depth(text) > limit
