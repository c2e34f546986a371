"""Plain-text renderings of block structures that several formats share."""

from __future__ import annotations


def list_text(items: list[str], *, ordered: bool, start: int = 1) -> str:
    """Items as lines "- item" / "1. item", an item's further lines indented under it."""
    lines: list[str] = []
    for number, text in enumerate(items, start=start):
        marker = f"{number}." if ordered else "-"
        first, *rest = text.splitlines() or [""]
        lines.append(f"{marker} {first}".rstrip())
        lines.extend(" " * (len(marker) + 1) + line if line else "" for line in rest)
    return "\n".join(lines)
