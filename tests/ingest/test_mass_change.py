"""The mass-change guard: a run that would delete or replace more than
ingest.mass_change_share of a collection stops before it writes anything, unless
allowed (--allow-mass-change). Real ingests of the fixture corpus into SQLite and an
on-disk Chroma."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from app.components import open_database, open_vectors
from app.settings import Settings
from app.store.models import Document, IngestRun
from ingest.mass_change import MassChange
from ingest.pipeline import Ingestor
from ingest.summary import IngestSummary
from tests.conftest import CORPUS, Models, make_settings
from tests.test_cli import docchat

GOOD = ["admin/backup.rst", "guide.md", "manual.pdf", "notes.txt", "reference/api.html"]


def ingest(
    settings: Settings, models: Models, root: Path, *, allow_mass_change: bool = False
) -> IngestSummary:
    db = open_database(settings)
    vectors = open_vectors(settings, writer=True)
    try:
        ingestor = Ingestor.configured(settings.ingest, db, vectors, models.embedder)
        return ingestor.run(
            [root], settings.vectors.collection, allow_mass_change=allow_mass_change
        )
    finally:
        vectors.close()
        db.close()


def stored(settings: Settings) -> tuple[set[tuple[str, str]], int, list[str]]:
    """(source, content hash) of every document row, the vector count, run statuses."""
    db = open_database(settings)
    vectors = open_vectors(settings, writer=False)
    try:
        with db.session() as session:
            rows = session.execute(select(Document.source, Document.content_hash))
            docs = {(row[0], row[1]) for row in rows}
            runs = list(session.scalars(select(IngestRun.status).order_by(IngestRun.id)))
        count = vectors._collection(settings.vectors.collection).count()
        return docs, count, runs
    finally:
        vectors.close()
        db.close()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The fixture corpus without its bad files: five good documents."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    shutil.rmtree(target / "bad")
    return target


def test_a_run_over_a_folder_missing_most_files_is_refused(
    tmp_path: Path, corpus: Path, models: Models
) -> None:
    settings = make_settings(tmp_path / "data")
    assert settings.ingest.mass_change_share == 0.5
    first = ingest(settings, models, corpus)
    assert (first.new, first.status) == (5, "completed")
    before = stored(settings)

    for name in GOOD[1:]:  # four of the five files gone: admin/backup.rst is left
        (corpus / name).unlink()
    with pytest.raises(MassChange) as refused:
        ingest(settings, models, corpus)
    assert (refused.value.documents, refused.value.deleted, refused.value.replaced) == (5, 4, 0)
    message = str(refused.value)
    assert "delete 4 and replace 0 of the 5 documents" in message
    assert "(80%)" in message
    assert "--allow-mass-change" in message
    docs, vectors, runs = stored(settings)
    assert (docs, vectors) == before[:2], "a refused run must not change the index"
    assert runs == ["completed", "refused"]

    allowed = ingest(settings, models, corpus, allow_mass_change=True)
    assert (allowed.deleted, allowed.unchanged, allowed.status) == (4, 1, "completed")
    docs, _, _ = stored(settings)
    assert docs == {(s, h) for s, h in before[0] if s == "corpus/admin/backup.rst"}


def test_replacing_most_files_counts_too_and_small_changes_pass(
    tmp_path: Path, corpus: Path, models: Models
) -> None:
    settings = make_settings(tmp_path / "data")
    ingest(settings, models, corpus)
    # Two of five: within the share (and below the floor of three documents).
    notes = corpus / "notes.txt"
    notes.write_text(notes.read_text(encoding="utf-8") + "\nWidgets hum.\n", encoding="utf-8")
    (corpus / "guide.md").unlink()
    small = ingest(settings, models, corpus)
    assert (small.changed, small.deleted) == (1, 1)

    # Three of the four left, all edited: 75% replaced.
    before = stored(settings)
    for name in ("notes.txt", "admin/backup.rst", "reference/api.html"):
        path = corpus / name
        path.write_text(path.read_text(encoding="utf-8") + "\nEdited.\n", encoding="utf-8")
    with pytest.raises(MassChange) as refused:
        ingest(settings, models, corpus)
    assert (refused.value.documents, refused.value.deleted, refused.value.replaced) == (4, 0, 3)
    assert stored(settings)[:2] == before[:2]


@pytest.mark.slow
def test_cli_refuses_with_counts_then_proceeds_when_allowed(tmp_path: Path, corpus: Path) -> None:
    data = tmp_path / "data"
    first = docchat("ingest", str(corpus), data_dir=data)
    assert first.returncode == 0, first.stderr
    for name in GOOD[:3]:
        (corpus / name).unlink()

    refused = docchat("ingest", str(corpus), data_dir=data)
    assert refused.returncode == 1
    said = " ".join(refused.stderr.split())
    assert "would delete 3 and replace 0 of the 5 documents" in said, refused.stderr
    assert "--allow-mass-change" in said

    allowed = docchat("ingest", str(corpus), "--allow-mass-change", data_dir=data)
    assert allowed.returncode == 0, allowed.stderr
    assert "deleted" in allowed.stdout
