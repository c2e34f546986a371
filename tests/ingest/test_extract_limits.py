"""Hostile PDFs (issue #22): a few kilobytes of compressed content stream must not cost
an hour of CPU. The text of a file and of a page is bounded, each file's extraction has
a time budget, and a page repeated a hundred times is indexed once.

Before the fix, the bomb below (a few KB) gave its whole 660,000 characters, 416 identical
chunks came from the probe's 1,232 bytes, and nothing bounded a file's extraction time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from app.components import open_database, open_vectors
from app.settings import Settings
from app.store.models import Chunk, Document
from ingest.document import ExtractLimits, LoadedDocument, LoadError
from ingest.loaders import load_bytes, load_file
from ingest.pipeline import Ingestor
from ingest.summary import IngestSummary
from tests.conftest import CORPUS, Models, make_settings
from tests.fixtures.make_pdf import build_pdf, compressed, text_bomb

LINE = "Bomb text repeated over and over"  # 32 characters, one line per text-show operator
REPEATED_PAGE = [
    "Configuring the widget cache",
    "",
    "The widget cache keeps rendered widgets in memory for ten minutes by default.",
    "Set cache.ttl_s to change how long, and cache.max_mb to bound its size; a",
    "restart empties it. Widgets larger than a megabyte are never cached.",
]


def run(settings: Settings, models: Models, root: Path) -> IngestSummary:
    db = open_database(settings)
    vectors = open_vectors(settings, writer=True)
    try:
        ingestor = Ingestor.configured(settings.ingest, db, vectors, models.embedder)
        return ingestor.run([root], settings.vectors.collection)
    finally:
        vectors.close()
        db.close()


def chars(doc: LoadedDocument) -> int:
    """The characters of text a document holds (what the bounds count)."""
    return sum(len(p) for s in doc.sections for p in s.paragraphs)


def findings(summary: IngestSummary, check: str) -> list[str]:
    return [f"{f.source}: {f.reason}" for f in summary.findings if f.check == check]


def test_a_text_bomb_page_is_cut_at_the_page_bound() -> None:
    bomb = text_bomb(20_000)
    assert len(bomb) < 5_000  # 20,000 text-show operators, compressed
    doc = load_bytes(bomb, "bomb.pdf")  # the default limits
    assert 90_000 < chars(doc) <= ExtractLimits().max_page_chars
    assert doc.limits == [
        "text of 1 of 1 pages cut at 100000 characters (ingest.max_page_chars): page 1"
    ]


def test_a_many_page_bomb_is_cut_at_the_file_bound() -> None:
    # 10 pages of 66,000 characters each; the file bound stops it within the third.
    limits = ExtractLimits(max_file_chars=150_000, max_page_chars=100_000)
    doc = load_bytes(text_bomb(2_000, pages=10), "bomb.pdf", limits)
    assert 140_000 < chars(doc) <= 150_000
    assert [s.heading for s in doc.sections] == ["Page 1", "Page 2", "Page 3"]
    assert doc.limits == [
        "text cut at 150000 characters (ingest.max_file_chars): 3 of 10 pages read"
    ]


def test_text_formats_are_cut_at_the_file_bound() -> None:
    paragraph = "A paragraph of plain words about widgets. " * 50
    text = (paragraph + "\n\n") * 100
    doc = load_bytes(text.encode(), "big.txt", ExtractLimits(max_file_chars=10_000))
    assert chars(doc) == 10_000
    total = 100 * len(paragraph.strip())
    assert doc.limits == [f"text cut at 10000 characters (ingest.max_file_chars) of {total}"]


def test_a_page_past_the_time_budget_is_stopped_and_the_file_skipped() -> None:
    # One page of 200,000 text-show operators (24 KB): pypdf's extraction time grows
    # faster than the page (20,000 took 0.7 s, 200,000 took 57 s), and nothing can stop
    # it in-process. The child is killed when the budget is spent. The outcome does not
    # depend on the machine's speed: even starting the child may take the whole second.
    bomb = text_bomb(200_000)
    with pytest.raises(LoadError, match=r"longer than 1 s \(ingest.extract_timeout_s\)"):
        load_bytes(bomb, "bomb.pdf", ExtractLimits(timeout_s=1))


def test_the_pages_read_before_the_time_budget_ran_out_are_kept() -> None:
    good = [["Widget basics", "", "A widget is a small server-side component."]] * 2
    pdf = compressed(build_pdf([*good, [LINE] * 300_000]))  # page 3: minutes of work
    doc = load_bytes(pdf, "slow.pdf", ExtractLimits(timeout_s=20))
    assert [s.heading for s in doc.sections] == ["Page 1", "Page 2"]
    assert doc.limits == [
        "text extraction stopped after 20 s (ingest.extract_timeout_s): 2 of 3 pages read"
    ]


def test_a_folder_with_bombs_still_indexes_its_good_files(tmp_path: Path, models: Models) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(CORPUS, folder, ignore=shutil.ignore_patterns("bad"))
    (folder / "bomb.pdf").write_bytes(text_bomb(6_000))  # 198,000 characters
    (folder / "slow.pdf").write_bytes(text_bomb(300_000))  # minutes of work: killed
    settings = make_settings(
        tmp_path / "data",
        ingest={"max_page_chars": 5_000, "max_file_chars": 5_000, "extract_timeout_s": 10},
    )
    summary = run(settings, models, folder)

    assert findings(summary, "limits") == [
        "docs/bomb.pdf: text of 1 of 1 pages cut at 5000 characters (ingest.max_page_chars): page 1"
    ]
    assert findings(summary, "load") == [
        "docs/slow.pdf: text extraction took longer than 10 s (ingest.extract_timeout_s); "
        "file skipped"
    ]
    assert (summary.new, summary.failed, summary.status) == (6, 1, "partial")
    db = open_database(settings)
    with db.session() as session:
        sources = set(session.scalars(select(Document.source)))
        bomb_text = session.scalars(
            select(Chunk.text).join(Document).where(Document.source == "docs/bomb.pdf")
        ).all()
    db.close()
    good = {"admin/backup.rst", "guide.md", "manual.pdf", "notes.txt", "reference/api.html"}
    assert sources == {f"docs/{name}" for name in good} | {"docs/bomb.pdf"}
    # The bomb's 5,000 characters are one line repeated: a handful of distinct chunks.
    assert sum(len(t) for t in bomb_text) <= 5_000
    assert len(findings(summary, "repeated_chunks")) == 1


def test_a_repeated_page_is_indexed_once(tmp_path: Path, models: Models) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "repeated.pdf").write_bytes(build_pdf([REPEATED_PAGE] * 6))
    settings = make_settings(tmp_path / "data")
    summary = run(settings, models, folder)

    db = open_database(settings)
    with db.session() as session:
        chunks = session.scalars(select(Chunk).order_by(Chunk.ord)).all()
        stored = [(c.ord, c.section, c.text) for c in chunks]
    db.close()
    # Before the fix: six chunks, one per page, each the same text, and no finding.
    assert len(load_file(folder / "repeated.pdf").sections) == 6
    assert [(o, s) for o, s, _ in stored] == [(0, "Page 1")]
    assert "The widget cache keeps rendered widgets" in stored[0][2]
    assert summary.chunks_written == 1
    assert findings(summary, "repeated_chunks") == [
        "docs/repeated.pdf: 5 of 6 chunks repeat an earlier chunk word for word; "
        "dropped, each text is indexed once (1 chunks)"
    ]
