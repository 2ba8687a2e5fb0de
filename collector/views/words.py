"""How a count reads in a sentence: "1 host", "2 hosts", never "1 hosts".

Shared by every command that prints a summary line (``osmon collect``, ``osmon status``,
``osmon run``), so they agree on the wording.
"""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` followed by ``noun``, in the plural unless the count is exactly one."""
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"
