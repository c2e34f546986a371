"""Findings worth reading: repeated findings print as one line with a count, and the
short-chunk warning speaks of fragmented text, not of the end of every section."""

from __future__ import annotations

from ingest.chunking import ChunkDraft
from ingest.quality import check_chunks
from ingest.quality_report import format_report, grouped


def drafts(*tokens: int) -> list[ChunkDraft]:
    return [ChunkDraft(i, "", f"chunk {i}", n) for i, n in enumerate(tokens)]


def test_a_short_last_chunk_is_not_a_finding_but_fragments_are() -> None:
    assert check_chunks(drafts(180, 150, 5)) == []  # the end of a section
    assert check_chunks(drafts(*[180] * 8, 4, 3)) == []  # 2 of 10: a few section ends
    fragmented = check_chunks(drafts(3, 4, 180, 2, 5))
    assert [f.reason for f in fragmented] == ["4 of 5 chunks are shorter than 12 tokens"]
    assert check_chunks(drafts(3, 4))  # two fragments and nothing else
    assert check_chunks(drafts(5)) == []  # a single short chunk: near-empty says it


def test_repeated_findings_are_one_line_with_a_count() -> None:
    same = [
        {"severity": "warning", "source": f"p{i}.html", "reason": f"3 of {i + 8} chunks"}
        for i in range(40)
    ]
    other = {"severity": "error", "source": "x.md", "reason": "empty file"}
    twice = [
        {"severity": "warning", "source": f"d{i}.md", "reason": "near-empty: 9 characters"}
        for i in range(2)
    ]
    lines = grouped([*same, other, *twice])
    assert lines == [
        ("warning", "40 files: 3 of N chunks (e.g. p0.html, p1.html, p2.html)"),
        ("error", "x.md: empty file"),
        ("warning", "d0.md: near-empty: 9 characters"),  # under three: each its own line
        ("warning", "d1.md: near-empty: 9 characters"),
    ]
    report = {
        "run": {
            "id": 1,
            "collection": "docs",
            "dry_run": False,
            "started_at": "2026-12-06T10:00:00",
            "status": "completed",
            "seconds": 1.0,
            "errors": 1,
            "warnings": 42,
            **dict.fromkeys(
                (
                    "new",
                    "changed",
                    "unchanged",
                    "deleted",
                    "failed",
                    "quarantined",
                    "skipped",
                    "chunks_written",
                ),
                0,
            ),
        },
        "findings": [{**f, "check": "short_chunks"} for f in same],
    }
    text = format_report(report)
    assert text[-2:] == [
        "short_chunks (40)",
        "  warning  40 files: 3 of N chunks (e.g. p0.html, p1.html, p2.html)",
    ]
