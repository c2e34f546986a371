"""The incremental ingest against a real on-disk Chroma and SQLite file."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.components import open_database, open_vectors
from app.settings import Settings
from app.store.models import Chunk, Document, IngestRun
from app.store.vectors import VectorStore, VectorStoreBusy
from ingest.chunking import Chunker
from ingest.loaders import load_file
from ingest.pipeline import Ingestor
from ingest.summary import IngestSummary
from tests.conftest import CORPUS, Models, make_settings

GOOD = ["admin/backup.rst", "guide.md", "manual.pdf", "notes.txt", "reference/api.html"]
BAD = {
    "bad/binary.md": "binary content",
    "bad/corrupt.pdf": "corrupt or unreadable PDF",
    "bad/empty.md": "empty file",
    "bad/latin1.txt": "not valid UTF-8",
}


def run(settings: Settings, models: Models, *roots: Path, dry_run: bool = False) -> IngestSummary:
    db = open_database(settings)
    vectors = None if dry_run else open_vectors(settings, writer=True)
    try:
        ingestor = Ingestor.configured(
            settings.ingest, db, vectors, models.embedder, max_file_bytes=1_000_000
        )
        return ingestor.run(list(roots), settings.vectors.collection, dry_run=dry_run)
    finally:
        if vectors:
            vectors.close()
        db.close()


def expected_chunks(models: Models, settings: Settings, path: Path) -> int:
    chunker = Chunker(
        models.embedder.count_tokens,
        max_tokens=settings.ingest.chunk_tokens,
        overlap=settings.ingest.chunk_overlap,
    )
    return len(chunker.chunk(load_file(path)))


def stored_state(settings: Settings) -> dict[str, object]:
    """What the stores hold, independent of ids: for comparing two runs."""
    db = open_database(settings)
    vectors = open_vectors(settings, writer=False)
    try:
        with db.session() as session:
            docs = {
                (d.source, d.content_hash, d.status, d.n_chunks)
                for d in session.scalars(select(Document))
            }
            chunks = {
                (c.document.source, c.ord, c.content_hash) for c in session.scalars(select(Chunk))
            }
        collection = settings.vectors.collection
        raw = vectors._collection(collection).get(include=["metadatas", "documents"])
        vector_chunks = {(m["source"], m["ord"], m["doc_hash"]) for m in raw["metadatas"]}
        return {"docs": docs, "chunks": chunks, "vectors": vector_chunks, "n": len(raw["ids"])}
    finally:
        vectors.close()
        db.close()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


def test_folder_with_every_format_and_bad_files(
    tmp_path: Path, corpus: Path, models: Models
) -> None:
    settings = make_settings(tmp_path / "data")
    summary = run(settings, models, corpus)
    assert (summary.new, summary.changed, summary.unchanged, summary.deleted) == (5, 0, 0, 0)
    assert summary.failed == len(BAD)
    assert summary.skipped == 1  # image.png
    assert summary.status == "partial"
    errors = {f.source: f.reason for f in summary.findings if f.severity == "error"}
    assert set(errors) == {f"corpus/{name}" for name in BAD}
    for name, reason in BAD.items():
        assert reason in errors[f"corpus/{name}"]
    want = sum(expected_chunks(models, settings, corpus / name) for name in GOOD)
    assert summary.chunks_written == want
    state = stored_state(settings)
    assert state["n"] == want
    assert len(state["chunks"]) == want  # type: ignore[arg-type]
    assert {d[0] for d in state["docs"]} == {f"corpus/{name}" for name in GOOD}  # type: ignore[attr-defined]
    db = open_database(settings)
    with db.session() as session:
        stored = session.scalars(select(IngestRun)).one()
        assert (stored.status, stored.new, stored.failed, stored.chunks_written) == (
            "partial",
            5,
            4,
            want,
        )
        assert {i.path for i in stored.findings if i.severity == "error"} == set(errors)
    db.close()


def test_hidden_html_text_is_not_indexed(tmp_path: Path, corpus: Path, models: Models) -> None:
    settings = make_settings(tmp_path / "data")
    run(settings, models, corpus / "reference")
    db = open_database(settings)
    with db.session() as session:
        texts = " ".join(session.scalars(select(Chunk.text)))
    db.close()
    assert "/v2/widgets" in texts
    assert "HIDDEN-CANARY-TEXT" not in texts


def test_incremental_edit_add_delete(tmp_path: Path, corpus: Path, models: Models) -> None:
    settings = make_settings(tmp_path / "data")
    for name in BAD:
        (corpus / name).unlink()
    first = run(settings, models, corpus)
    assert (first.new, first.failed, first.status) == (5, 0, "completed")

    again = run(settings, models, corpus)
    assert (again.new, again.changed, again.unchanged, again.deleted) == (0, 0, 5, 0)
    assert again.chunks_written == 0

    guide = corpus / "guide.md"
    guide.write_text(
        guide.read_text() + "\n\n## Uninstalling\n\nRun `widgetctl purge` to remove every widget.\n"
    )
    (corpus / "notes.txt").unlink()
    (corpus / "faq.md").write_text("# FAQ\n\nWidgets are blue unless painted otherwise.\n")
    third = run(settings, models, corpus)
    assert (third.new, third.changed, third.unchanged, third.deleted) == (1, 1, 3, 1)
    assert third.chunks_written == expected_chunks(models, settings, guide) + expected_chunks(
        models, settings, corpus / "faq.md"
    )

    state = stored_state(settings)
    final = ["admin/backup.rst", "faq.md", "guide.md", "manual.pdf", "reference/api.html"]
    want = sum(expected_chunks(models, settings, corpus / name) for name in final)
    assert state["n"] == want
    assert len(state["chunks"]) == want  # type: ignore[arg-type]
    assert {c[0] for c in state["vectors"]} == {f"corpus/{n}" for n in final}  # type: ignore[attr-defined]

    # The same final folder ingested from scratch gives the same stores.
    fresh = make_settings(tmp_path / "fresh")
    run(fresh, models, corpus)
    assert stored_state(fresh) == state


def test_broken_edit_keeps_the_previous_version(
    tmp_path: Path, corpus: Path, models: Models
) -> None:
    settings = make_settings(tmp_path / "data")
    run(settings, models, corpus / "notes.txt")
    before = stored_state(settings)
    (corpus / "notes.txt").write_bytes(b"caf\xe9 broken")
    summary = run(settings, models, corpus / "notes.txt")
    assert summary.failed == 1
    assert stored_state(settings) == before


def test_dry_run_writes_nothing(tmp_path: Path, corpus: Path, models: Models) -> None:
    settings = make_settings(tmp_path / "data")
    summary = run(settings, models, corpus, dry_run=True)
    assert (summary.new, summary.failed) == (5, 4)
    assert summary.chunks_written > 0
    db = open_database(settings)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 0
        assert session.scalars(select(IngestRun.dry_run)).one() is True
    db.close()


def test_interrupted_store_converges(
    tmp_path: Path, corpus: Path, models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between the vector upsert and the stale-chunk delete, then a re-run.

    A real Chroma will not fail on demand at that exact point, so the failure is
    provoked by patching its delete once; everything else is real.
    """
    settings = make_settings(tmp_path / "data")
    for name in BAD:
        (corpus / name).unlink()
    run(settings, models, corpus)
    (corpus / "guide.md").write_text((corpus / "guide.md").read_text().replace("7421", "7422"))

    real_delete = VectorStore.delete

    def crash(self: VectorStore, collection: str, where: dict[str, object]) -> None:
        raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(VectorStore, "delete", crash)
    with pytest.raises(KeyboardInterrupt):
        run(settings, models, corpus)
    monkeypatch.setattr(VectorStore, "delete", real_delete)

    db = open_database(settings)
    with db.session() as session:
        assert (
            session.scalars(select(IngestRun.status).order_by(IngestRun.id.desc())).first()
            == "interrupted"
        )
        guide = session.scalars(select(Document).where(Document.source == "corpus/guide.md")).one()
        assert guide.status == "pending"
    db.close()

    summary = run(settings, models, corpus)
    assert summary.changed == 1
    fresh = make_settings(tmp_path / "fresh")
    run(fresh, models, corpus)
    assert stored_state(settings) == stored_state(fresh)


def _indexed(db_path: Path) -> int:
    try:
        with sqlite3.connect(db_path, timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM documents WHERE status='indexed'").fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


def test_killed_cli_ingest_then_rerun_converges(tmp_path: Path, models: Models) -> None:
    """SIGKILL a real `docchat ingest` half-way; the next run matches a clean one."""
    docs = tmp_path / "many"
    docs.mkdir()
    paragraph = "The widget pipeline moves widgets between stores and checks each one. " * 6
    for i in range(60):
        body = "\n\n".join(f"## Part {j}\n\n{i}-{j}: {paragraph}" for j in range(6))
        (docs / f"page{i:02}.md").write_text(f"# Page {i}\n\n{body}\n")
    data = tmp_path / "data"
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(data),
        "DOCCHAT_SECRETS_DIR": str(tmp_path / "none"),
        # The defaults (fp32 on ONNX Runtime, in bf16 autocast on a CPU with bf16;
        # stages overlapped); the session's torch embedder finishes the run: the same
        # fp32 variant.
        "DOCCHAT_EMBEDDING__BACKEND": "onnx",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ingest", str(docs)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while _indexed(data / "docchat.db") < 10:
        assert process.poll() is None, "ingest finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 10 <= _indexed(data / "docchat.db") < 60

    settings = make_settings(data)
    summary = run(settings, models, docs)
    assert summary.unchanged >= 10
    assert summary.new + summary.changed + summary.unchanged == 60
    fresh = make_settings(tmp_path / "fresh")
    run(fresh, models, docs)
    assert stored_state(settings) == stored_state(fresh)


def test_second_writer_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    reader = open_vectors(settings, writer=False)
    try:
        with pytest.raises(VectorStoreBusy, match="one writer at a time"):
            open_vectors(settings, writer=True)
    finally:
        reader.close()
    writer = open_vectors(settings, writer=True)
    writer.close()


def test_links_out_of_the_folder_are_not_followed(tmp_path: Path, models: Models) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.md").write_text("# Private\n\nThe salary table lives here. " * 5)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.md").write_text("# Page\n\nWidgets are configured in widget.toml. " * 5)
    (docs / "escape.md").symlink_to(outside / "private.md")
    (docs / "escape-dir").symlink_to(outside, target_is_directory=True)
    (docs / "inside.md").symlink_to(docs / "page.md")
    settings = make_settings(tmp_path / "data")
    summary = run(settings, models, docs)
    assert summary.new == 1  # page.md once; the inside link resolves to the same file
    state = stored_state(settings)
    assert {d[0] for d in state["docs"]} == {"docs/page.md"}  # type: ignore[attr-defined]


def test_build_artefacts_and_excluded_paths_are_left_out(tmp_path: Path, models: Models) -> None:
    docs = tmp_path / "html"
    (docs / "_sources" / "library").mkdir(parents=True)
    (docs / "library").mkdir()
    (docs / "library" / "json.html").write_text(
        "<html><body><h1>json</h1><p>Encode and decode JSON documents. " * 5 + "</p></body></html>"
    )
    (docs / "_sources" / "library" / "json.rst.txt").write_text("json\n====\n\nEncode JSON. " * 5)
    (docs / "drafts").mkdir()
    (docs / "drafts" / "wip.md").write_text("# WIP\n\nNot ready for readers yet. " * 5)
    settings = make_settings(tmp_path / "data")
    db = open_database(settings)
    vectors = open_vectors(settings, writer=True)
    try:
        ingestor = Ingestor.configured(
            settings.ingest, db, vectors, models.embedder, extra_exclude=["drafts/*"]
        )
        summary = ingestor.run([docs], settings.vectors.collection)
    finally:
        vectors.close()
        db.close()
    assert (summary.new, summary.skipped) == (1, 0)
    assert {d[0] for d in stored_state(settings)["docs"]} == {"html/library/json.html"}  # type: ignore[attr-defined]
