"""Data quality at ingest: duplicates quarantined, near-duplicates and boilerplate reported.

Real ingests (the real embedder, an on-disk Chroma and SQLite file), as in test_pipeline,
and the `docchat quality report` command as a user runs it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text, update

from app.components import open_database, open_vectors
from app.settings import Settings
from app.store.db import Database, alembic_config
from app.store.models import Chunk, Document, IngestFinding, IngestRun
from ingest.chunking import ChunkDraft
from ingest.document import LoadedDocument, Section
from ingest.quality import (
    SIGNATURE_SIZE,
    SeenDocuments,
    check_boilerplate,
    check_near_duplicate,
    drop_repeated_chunks,
    paragraph_fingerprints,
    signature,
    similarity,
)
from ingest.summary import IngestSummary
from tests.conftest import Models, make_settings
from tests.ingest.test_pipeline import run
from tests.test_cli import docchat

VOCABULARY = (
    "widget server store queue backup restore token schema cluster node replica shard "
    "index cache limit quota policy tenant account region bucket stream event handler "
    "worker thread socket buffer packet header route proxy gateway listener channel "
    "message payload record column table query plan cursor batch commit rollback lock "
    "latch page block extent segment journal snapshot archive export import mirror "
    "upgrade release version patch build image layer volume mount daemon service agent "
    "probe metric alert trace span sample window budget retry backoff timeout deadline"
)
WORDS = VOCABULARY.split()
FOOTER = (
    "Acme Widget Server is a trademark of Acme Corporation. This documentation is provided "
    "as is, without warranty of any kind, express or implied, including but not limited to "
    "the warranties of merchantability, fitness for a particular purpose and "
    "noninfringement. In no event shall the authors or copyright holders be liable for any "
    "claim, damages or other liability, whether in an action of contract, tort or "
    "otherwise, arising from, out of or in connection with the documentation or the use "
    "or other dealings in the documentation. Copyright Acme Corporation, all rights "
    "reserved; redistribution of these pages requires written permission from the Acme "
    "legal department, which answers requests within thirty days of receipt."
)


def prose(seed: int, words: int = 300) -> str:
    """Text that shares no 5-word phrase with any other seed's: each page is its own."""
    rng = random.Random(seed)
    sentences = []
    while words > 0:
        n = min(words, rng.randint(8, 16))
        sentences.append(" ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + ".")
        words -= n
    paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    return "\n\n".join(paragraphs)


def page(title: str, body: str) -> str:
    return f"# {title}\n\n{body}\n"


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content)
    return folder


@dataclass
class Stored:
    docs: dict[str, Document]  # source -> row
    chunk_sources: set[str]  # sources with SQL chunks
    vector_sources: set[str]  # sources with vectors in Chroma


def stored(settings: Settings) -> Stored:
    db = open_database(settings)
    vectors = open_vectors(settings, writer=False)
    try:
        with db.session() as session:
            docs = {d.source: d for d in session.scalars(select(Document))}
            chunk_sources = {c.document.source for c in session.scalars(select(Chunk))}
        raw = vectors._collection(settings.vectors.collection).get(include=["metadatas"])
        vector_sources = {str(m["source"]) for m in raw["metadatas"]}
    finally:
        vectors.close()
        db.close()
    return Stored(docs, chunk_sources, vector_sources)


def findings(summary: IngestSummary, check: str) -> dict[str, str]:
    """source -> reason of the run's findings of one check."""
    return {f.source: f.reason for f in summary.findings if f.check == check}


# --- one folder with every kind of junk -------------------------------------------------------

BOILERPLATE_PAGES = [f"legal/page{n}.md" for n in range(1, 7)]


def junk_folder(root: Path) -> Path:
    near = prose(2).replace(".", ". Moreover", 1)  # one word more in 300
    files = {
        "a.md": page("Alpha", prose(1)),
        # The same text once loaded: the HTML comment is dropped.
        "copy-of-a.md": page("Alpha", prose(1)) + "\n<!-- internal note -->\n",
        "b1.md": page("Beta", prose(2)),
        "b2.md": page("Beta", near),
        "long.md": page("Long", prose(3, 600) + "\n\n" + FOOTER),
    }
    for n, name in enumerate(BOILERPLATE_PAGES):
        files[name] = page(f"Page {n}", prose(10 + n, 30) + "\n\n" + FOOTER)
    (root / "docs" / "legal").mkdir(parents=True)
    return write(root / "docs", files)


@dataclass
class Junk:
    settings: Settings
    summary: IngestSummary
    docs: Path


@pytest.fixture(scope="module")
def junk(tmp_path_factory: pytest.TempPathFactory, models: Models) -> Junk:
    root = tmp_path_factory.mktemp("quality")
    docs = junk_folder(root)
    settings = make_settings(root / "data")
    return Junk(settings, run(settings, models, docs), docs)


def test_exact_duplicate_is_quarantined_and_names_the_original(junk: Junk) -> None:
    summary = junk.summary
    assert (summary.new, summary.failed, summary.quarantined) == (10, 0, 1)
    assert summary.status == "completed"
    assert findings(summary, "duplicate") == {"docs/copy-of-a.md": "exact duplicate of docs/a.md"}
    (finding,) = [f for f in summary.findings if f.check == "duplicate"]
    assert finding.severity == "error"
    state = stored(junk.settings)
    assert "docs/copy-of-a.md" not in state.docs
    assert "docs/copy-of-a.md" not in state.chunk_sources | state.vector_sources
    assert "docs/a.md" in state.chunk_sources & state.vector_sources


def test_near_duplicate_is_indexed_with_a_warning(junk: Junk) -> None:
    near = findings(junk.summary, "near_duplicate")
    assert set(near) == {"docs/b2.md"}
    assert near["docs/b2.md"].startswith("near-duplicate of docs/b1.md (")
    assert "docs/b2.md" in stored(junk.settings).vector_sources


def test_mostly_boilerplate_pages_are_reported(junk: Junk) -> None:
    boilerplate = findings(junk.summary, "boilerplate")
    # long.md carries the same footer, but its own text is most of it.
    assert set(boilerplate) == {f"docs/{name}" for name in BOILERPLATE_PAGES}
    for reason in boilerplate.values():
        share = int(reason.removeprefix("mostly boilerplate (").removesuffix("% repeated text)"))
        assert 70 <= share < 100


def test_run_and_documents_keep_what_later_runs_need(junk: Junk) -> None:
    db = open_database(junk.settings)
    with db.session() as session:
        stored_run = session.get_one(IngestRun, junk.summary.run_id)
        assert stored_run.quarantined == 1
        checks = {(i.path, i.check, i.severity) for i in stored_run.findings}
        assert ("docs/copy-of-a.md", "duplicate", "error") in checks
        assert ("docs/b2.md", "near_duplicate", "warning") in checks
        docs = list(session.scalars(select(Document)))
        assert len(docs) == 10
        for doc in docs:
            assert doc.text_hash is not None
            assert len(doc.text_hash) == 64
            assert doc.signature is not None
            assert len(doc.signature) == SIGNATURE_SIZE
    db.close()


def test_quality_report_command(junk: Junk, models: Models) -> None:
    data = junk.settings.data_dir
    result = docchat("quality", "report", "--json", data_dir=data, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["run"]["id"] == junk.summary.run_id
    assert (report["run"]["new"], report["run"]["quarantined"]) == (10, 1)
    assert (report["run"]["errors"], report["run"]["warnings"]) == (
        1,
        len(junk.summary.findings) - 1,
    )
    assert {
        "check": "duplicate",
        "severity": "error",
        "source": "docs/copy-of-a.md",
        "reason": "exact duplicate of docs/a.md",
    } in report["findings"]
    checks = [f["check"] for f in report["findings"]]
    assert checks.index("duplicate") < checks.index("near_duplicate") < checks.index("boilerplate")
    assert checks.count("boilerplate") == len(BOILERPLATE_PAGES)

    lines = docchat("quality", "report", data_dir=data).stdout.splitlines()
    assert lines[0].startswith(f"run {junk.summary.run_id} into 'docs', ")
    assert "10 new" in lines[0]
    assert "1 quarantined" in lines[0]
    assert lines[1] == f"findings: 1 errors, {len(junk.summary.findings) - 1} warnings"
    duplicate = lines.index("duplicate (1)")
    assert lines[duplicate + 1].split() == [
        "error",
        "docs/copy-of-a.md:",
        "exact",
        "duplicate",
        "of",
        "docs/a.md",
    ]
    assert "near_duplicate (1)" in lines
    assert f"boilerplate ({len(BOILERPLATE_PAGES)})" in lines

    # A later dry run changes nothing, so the report does not show it unless asked.
    dry = run(junk.settings, models, junk.docs, dry_run=True)
    assert dry.quarantined == 1
    latest = json.loads(docchat("quality", "report", "--json", data_dir=data).stdout)
    assert latest["run"]["id"] == junk.summary.run_id
    chosen = docchat("quality", "report", "--json", "--run", str(dry.run_id), data_dir=data)
    assert json.loads(chosen.stdout)["run"]["dry_run"] is True

    missing = docchat("quality", "report", "--collection", "other-docs", data_dir=data)
    assert missing.returncode == 1
    assert "no ingest run of collection 'other-docs'" in missing.stderr


# --- across runs --------------------------------------------------------------------------------


def test_duplicate_of_a_document_indexed_by_an_earlier_run(tmp_path: Path, models: Models) -> None:
    settings = make_settings(tmp_path / "data")
    first = write(tmp_path / "first", {"z.md": page("Zeta", prose(1))})
    run(settings, models, first)
    second = write(
        tmp_path / "second",
        {
            # Sorted first in its run, but the indexed one stays.
            "a-copy.md": page("Zeta", prose(1)),
            "near.md": page("Zeta", prose(1).replace(".", ". Moreover", 1)),
        },
    )
    summary = run(settings, models, second)
    assert (summary.new, summary.quarantined) == (1, 1)
    assert findings(summary, "duplicate") == {"second/a-copy.md": "exact duplicate of first/z.md"}
    # The earlier document is compared through its stored signature: it was not reloaded.
    assert findings(summary, "near_duplicate")["second/near.md"].startswith(
        "near-duplicate of first/z.md"
    )
    state = stored(settings)
    assert set(state.docs) == state.vector_sources == {"first/z.md", "second/near.md"}


def test_document_that_becomes_a_duplicate_loses_its_old_chunks(
    tmp_path: Path, models: Models
) -> None:
    settings = make_settings(tmp_path / "data")
    docs = write(tmp_path / "docs", {"a.md": page("A", prose(1)), "b.md": page("B", prose(2))})
    run(settings, models, docs)
    assert {"docs/a.md", "docs/b.md"} <= stored(settings).vector_sources

    (docs / "b.md").write_text(page("A", prose(1)))
    summary = run(settings, models, docs)
    assert (summary.unchanged, summary.changed, summary.quarantined) == (1, 0, 1)
    assert findings(summary, "duplicate") == {"docs/b.md": "exact duplicate of docs/a.md"}
    state = stored(settings)
    assert set(state.docs) == state.chunk_sources == state.vector_sources == {"docs/a.md"}

    # Still a duplicate: quarantined again, nothing else changes.
    again = run(settings, models, docs)
    assert (again.unchanged, again.quarantined, again.chunks_written) == (1, 1, 0)

    # Once the original is gone, the copy is no duplicate: it is indexed in the same run.
    (docs / "a.md").unlink()
    after = run(settings, models, docs)
    assert (after.new, after.deleted, after.quarantined) == (1, 1, 0)
    assert set(stored(settings).vector_sources) == {"docs/b.md"}


def test_documents_stored_before_the_checks_are_compared(tmp_path: Path, models: Models) -> None:
    """Rows without a text hash (from before migration 0003) get one on the next run."""
    settings = make_settings(tmp_path / "data")
    one = write(tmp_path / "one", {"a.md": page("A", prose(1))})
    two = write(tmp_path / "two", {"b.md": page("A", prose(1))})

    def forget_fingerprints() -> None:
        db = open_database(settings)
        with db.session() as session:
            session.execute(update(Document).values(text_hash=None, signature=None))
        db.close()

    run(settings, models, one)
    forget_fingerprints()
    run(settings, models, two)  # the old rows had nothing to compare: both indexed
    forget_fingerprints()
    assert set(stored(settings).vector_sources) == {"one/a.md", "two/b.md"}

    summary = run(settings, models, one, two)
    assert (summary.unchanged, summary.quarantined, summary.chunks_written) == (1, 1, 0)
    assert findings(summary, "duplicate") == {"two/b.md": "exact duplicate of one/a.md"}
    state = stored(settings)
    assert set(state.docs) == state.vector_sources == {"one/a.md"}
    assert state.docs["one/a.md"].text_hash is not None
    assert "load" not in run(settings, models, one).stages  # filled in: not reloaded


# --- the checks alone ---------------------------------------------------------------------------


def test_signature_is_stable_across_processes() -> None:
    """Stored signatures must match ones computed later (Python's own hash() would not)."""
    code = "from ingest.quality import signature; print(signature('one two three four five six'))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {f"{signature('one two three four five six')}\n"}


def test_similarity_estimates_shared_phrases() -> None:
    # Under SIGNATURE_SIZE shingles the signature is the whole set: the estimate is exact.
    a = signature("w1 w2 w3 w4 w5 w6 w7 w8 w9 w10")  # 6 shingles
    b = signature("w1 w2 w3 w4 w5 w6 w7 w8 w9 w11")  # 5 of them, and one other
    assert similarity(a, b) == pytest.approx(5 / 7)
    assert similarity(a, a) == 1.0
    assert signature("too few words here") == []
    # Above it, an estimate: 2,000 words, one changed, is about 0.998 similar.
    long = prose(7, 2000)
    edited = long.replace(".", ". Moreover", 1)
    assert similarity(signature(long), signature(edited)) >= 0.95
    assert similarity(signature(long), signature(prose(8, 2000))) < 0.1


def test_near_duplicate_ignores_the_document_itself_and_dissimilar_ones() -> None:
    seen = SeenDocuments()
    sig = signature(prose(1))
    seen.add("/d/a.md", "d/a.md", "hash-a", sig)
    assert check_near_duplicate("/d/a.md", sig, seen) is None
    assert check_near_duplicate("/d/x.md", signature(prose(2)), seen) is None
    issue = check_near_duplicate("/d/x.md", sig, seen)
    assert issue is not None
    assert issue.reason.startswith("near-duplicate of d/a.md (100%")
    seen.remove("/d/a.md")
    assert check_near_duplicate("/d/x.md", sig, seen) is None


def _doc(*paragraphs: str) -> LoadedDocument:
    return LoadedDocument("t", [Section("", list(paragraphs))])


def test_repeated_chunks_are_always_dropped_but_reported_only_when_many() -> None:
    def drafts(texts: list[str]) -> list[ChunkDraft]:
        return [ChunkDraft(n, "", t, 20) for n, t in enumerate(texts)]

    # A reference page repeating one code sample: indexed once, nothing to report.
    sample = "for item in items:\n    print(item)"
    page = drafts([f"paragraph {n} of the reference" for n in range(10)] + [sample, sample])
    kept, finding = drop_repeated_chunks(page)
    assert [d.text for d in kept].count(sample) == 1
    assert [d.ord for d in kept] == list(range(11))
    assert finding is None
    # A page copied over and over: the same, and a finding with the count.
    kept, finding = drop_repeated_chunks(drafts(["the same page"] * 6))
    assert len(kept) == 1
    assert finding is not None
    assert finding.reason.startswith("5 of 6 chunks repeat an earlier chunk")
    # Many repeats, but a small share of a long page; and a large share, but only one.
    assert drop_repeated_chunks(drafts([f"p{n}" for n in range(40)] + ["x"] * 4))[1] is None
    assert drop_repeated_chunks(drafts(["a", "b", "b"]))[1] is None
    assert drop_repeated_chunks(drafts(["a", "b", "b", "b"]))[1] is not None


def test_boilerplate_needs_enough_documents_and_enough_repeated_text() -> None:
    footer = "x" * 800
    pages = {f"p{n}": paragraph_fingerprints(_doc(f"own text {n} " * 10, footer)) for n in range(5)}
    assert set(check_boilerplate(pages)) == set(pages)
    assert check_boilerplate(dict(list(pages.items())[:4])) == {}  # fewer than 5 documents
    # In 5 of 20 documents: under the 30% needed.
    others = {f"q{n}": paragraph_fingerprints(_doc(f"unique {n} " * 50)) for n in range(15)}
    assert check_boilerplate({**pages, **others}) == {}
    # Mostly its own text: not flagged, though it has the footer too.
    pages["long"] = paragraph_fingerprints(_doc("own words " * 100, footer))
    assert set(check_boilerplate(pages)) == set(pages) - {"long"}


# --- the migration ------------------------------------------------------------------------------


def test_migration_0003_keeps_and_classifies_old_findings(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    command.upgrade(alembic_config(db.engine), "0002")
    reasons = {
        'possible prompt injection: "<|im_start|>"': "injection",
        "near-empty: only 12 characters of text": "near_empty",
        "3 of 9 chunks are shorter than 12 tokens": "short_chunks",
        "garbled text (9% replacement or control characters)": "garbled",
        "same content as docs/a.md": "duplicate",
        "empty file": "load",
    }
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ingest_runs (id, collection, roots, started_at, status, dry_run, new,"
                " changed, unchanged, deleted, failed, skipped, chunks_written, seconds)"
                " VALUES (1, 'docs', '/d', '2026-01-01', 'completed', 0, 1, 0, 0, 0, 0, 0, 1, 1.0)"
            )
        )
        for reason in reasons:
            conn.execute(
                text(
                    "INSERT INTO ingest_issues (run_id, path, severity, reason)"
                    " VALUES (1, 'docs/a.md', 'warning', :reason)"
                ),
                {"reason": reason},
            )
    db.migrate()
    with db.session() as session:
        assert session.get_one(IngestRun, 1).quarantined == 0
        stored_checks = {i.reason: i.check for i in session.scalars(select(IngestFinding))}
    assert stored_checks == reasons
    db.close()
