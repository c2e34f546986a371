"""Office formats (issue #26): real files made by LibreOffice (tests/fixtures/formats/make.sh)
or taken from public sample sets, read into sections that follow the document's headings,
and the bad ones (password-protected, corrupt, zip bombs) each a finding for that file only.
"""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from app.components import open_database, open_vectors
from app.settings import Settings
from ingest.document import ExtractLimits, LoadedDocument, LoadError
from ingest.loaders import load_bytes, load_file
from ingest.pipeline import Ingestor
from ingest.summary import IngestSummary
from tests.conftest import Models, make_settings
from tests.needs import need_tool

FORMATS = Path(__file__).parents[1] / "fixtures" / "formats"


def headings(doc: LoadedDocument) -> list[tuple[int, str]]:
    return [(s.level, s.heading) for s in doc.sections]


def section_text(doc: LoadedDocument, heading: str) -> str:
    matches = [s for s in doc.sections if s.heading == heading]
    assert matches, f"no section {heading!r} in {headings(doc)}"
    return "\n\n".join(matches[0].paragraphs)


def run(settings: Settings, models: Models, root: Path) -> IngestSummary:
    db = open_database(settings)
    vectors = open_vectors(settings, writer=True)
    try:
        ingestor = Ingestor.configured(settings.ingest, db, vectors, models.embedder)
        return ingestor.run([root], settings.vectors.collection)
    finally:
        vectors.close()
        db.close()


def top_hit(settings: Settings, models: Models, question: str) -> tuple[str, str, str]:
    """(source, section, text) of the best chunk for a question."""
    vectors = open_vectors(settings, writer=False)
    try:
        (embedding,) = models.embedder.embed([question])
        (hit,) = vectors.query(settings.vectors.collection, embedding, 1)
    finally:
        vectors.close()
    return str(hit.metadata["source"]), str(hit.metadata["section"]), hit.text


def zip_bomb(like: Path, member: str, size: int) -> bytes:
    """A copy of a real package whose `member` is `size` zero bytes, deflated (~1,000:1)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(like) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
    ):
        for info in source.infolist():
            if info.filename != member:
                target.writestr(info.filename, source.read(info))
        with target.open(member, "w", force_zip64=True) as stream:
            block = b"\0" * (1 << 24)
            for _ in range(size // len(block)):
                stream.write(block)
    return buffer.getvalue()


# --- Word ---------------------------------------------------------------------------------


def test_docx_headings_become_sections() -> None:
    doc = load_file(FORMATS / "widget-guide.docx")
    assert doc.title == "Widget Server operations guide"
    assert headings(doc) == [
        (1, "Widget Server operations guide"),
        (2, "Backups"),
        (3, "Restoring a backup"),
        (2, "Ports and limits"),
        (2, "Troubleshooting"),
    ]
    backups = section_text(doc, "Backups")
    assert "copies the widget store to the archive volume at 02:30" in backups
    assert "- Keep fourteen daily copies.\n- Test a restore every quarter." in backups
    assert "widgetctl restore" in section_text(doc, "Restoring a backup")
    assert section_text(doc, "Ports and limits").endswith(
        "Setting | Default | Meaning\n"
        "port | 7421 | The port the server listens on\n"
        "max_clients | 512 | Connections accepted at once"
    )
    assert (doc.warnings, doc.limits) == ([], [])


# --- OpenDocument text -----------------------------------------------------------------


def test_odt_reads_like_the_same_docx() -> None:
    """Both made by LibreOffice from one source: the same sections and text."""
    odt = load_file(FORMATS / "widget-guide.odt")
    docx = load_file(FORMATS / "widget-guide.docx")
    assert odt.title == "Widget Server operations guide"
    assert headings(odt) == headings(docx)
    assert [s.paragraphs for s in odt.sections] == [s.paragraphs for s in docx.sections]
    assert "port | 7421 | The port the server listens on" in section_text(odt, "Ports and limits")


def test_docx_is_cut_at_the_file_bound() -> None:
    data = (FORMATS / "widget-guide.docx").read_bytes()
    doc = load_bytes(data, "guide.docx", ExtractLimits(max_file_chars=100))
    assert sum(len(p) for s in doc.sections for p in s.paragraphs) == 100
    assert doc.limits == [
        "text cut at 100 characters (ingest.max_file_chars); the rest of the file was not read"
    ]


# --- PowerPoint ---------------------------------------------------------------------------


def test_pptx_slide_titles_become_sections() -> None:
    doc = load_file(FORMATS / "release-talk.pptx")
    assert doc.title == "Widget Server 3.0"  # the first slide's title
    assert headings(doc) == [(1, "Widget Server 3.0"), (1, "What is new"), (1, "Upgrade steps")]
    assert section_text(doc, "Widget Server 3.0") == (
        "What changes for operators in the spring release"
    )
    assert section_text(doc, "What is new").startswith(
        "- Widgets can now be pinned to a rack so they never migrate\n"
        "- The cache is shared between all workers of a node\n"
    )
    assert section_text(doc, "Upgrade steps") == (
        "- Drain the node with widgetctl drain\n"
        "- Install the 3.0 package and run widgetctl migrate\n\n"
        "From version | Downtime\n"
        "2.9 | none (rolling upgrade)\n"
        "2.8 or older | about five minutes per node\n\n"
        "Notes: Remind the audience that a migration cannot be rolled back."
    )


# --- EPUB --------------------------------------------------------------------------------


def test_epub_chapters_become_sections() -> None:
    doc = load_file(FORMATS / "field-manual.epub")
    assert doc.title == "Widget field manual"
    # LibreOffice's EPUB export writes headings as styled paragraphs: each chapter file
    # is headed by its title in the table of contents (the nav document).
    assert headings(doc) == [(1, "Installing a widget on site"), (1, "Servicing")]
    assert section_text(doc, "Installing a widget on site").startswith(
        "Mount the widget bracket at shoulder height"
    )
    assert section_text(doc, "Servicing") == (
        "Replace the dust filter every six months, or every two months in a workshop with "
        "sawdust in the air.\n\n"
        "Part | Interval\nDust filter | 6 months\nDrive belt | 2 years"
    )


# --- Excel --------------------------------------------------------------------------------


def test_xlsx_sheets_become_sections() -> None:
    doc = load_file(FORMATS / "capacity.xlsx")
    assert doc.title == "capacity"  # no title in its properties: the file name
    assert headings(doc) == [(1, "Server sizes"), (1, "Support hours")]
    assert section_text(doc, "Server sizes") == (
        "Plan | CPU cores | Memory (GB) | Widgets per second\n"
        "Starter | 2 | 4 | 150\n"
        "Business | 8 | 32 | 1200\n"
        "Total cores | 10"  # a formula, as its computed value
    )
    assert "Europe | 08:00 to 18:00 CET on weekdays" in section_text(doc, "Support hours")


def test_xlsx_rows_come_in_paragraphs_that_repeat_the_header() -> None:
    doc = load_file(FORMATS / "parts.xlsx")
    (sheet,) = doc.sections
    assert [len(p.splitlines()) for p in sheet.paragraphs] == [20, 20, 8]
    assert all(p.startswith("Part number | Name | Stock\n") for p in sheet.paragraphs)
    assert sheet.paragraphs[2].splitlines()[1] == "P-1039 | Widget spring size 39 | 273"


# --- Scanned PDFs (OCR) -------------------------------------------------------------------


def test_a_scanned_page_is_read_by_ocr() -> None:
    need_tool("tesseract", "OCR of scanned PDFs (apt-get install tesseract-ocr)")
    need_tool("pdftoppm", "rasterising PDF pages for OCR (apt-get install poppler-utils)")
    doc = load_file(FORMATS / "scanned.pdf")
    assert headings(doc) == [(0, "Page 1"), (0, "Page 2")]
    assert "Visitors sign in at the gate" in section_text(doc, "Page 1")  # its text layer
    scanned = " ".join(section_text(doc, "Page 2").split())
    assert "Worn widgets are returned to the depot in the blue crates." in scanned
    assert "first Monday of each month" in scanned
    assert (doc.warnings, doc.limits) == ([], [])


def test_ocr_over_its_page_budget_is_a_finding() -> None:
    need_tool("tesseract", "OCR of scanned PDFs (apt-get install tesseract-ocr)")
    limits = ExtractLimits(ocr_page_timeout_s=0.01)
    doc = load_file(FORMATS / "scanned.pdf", limits)
    assert section_text(doc, "Page 2") == ""
    assert doc.warnings == [
        "OCR of 1 of 2 pages took longer than 0.01 s (ingest.ocr_page_timeout_s); left out: page 2"
    ]


def test_ocr_past_the_file_budget_is_stopped_with_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tesseract that never finishes: the file's budget stops the extraction and the
    programs it started (its process group), keeping the page read before."""
    need_tool("pdftoppm", "rasterising PDF pages for OCR (apt-get install poppler-utils)")
    pid_file = tmp_path / "tesseract.pid"
    stuck = tmp_path / "bin" / "tesseract"
    stuck.parent.mkdir()
    stuck.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 120\n")
    stuck.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stuck.parent}{os.pathsep}{os.environ['PATH']}")
    limits = ExtractLimits(timeout_s=5, ocr_page_timeout_s=60)
    doc = load_file(FORMATS / "scanned.pdf", limits)
    assert [s.heading for s in doc.sections] == ["Page 1"]
    assert doc.limits == [
        "text extraction stopped after 5 s (ingest.extract_timeout_s): 1 of 2 pages read"
    ]
    pid = int(pid_file.read_text())
    for _ in range(50):  # the kill is sent; the process may take a moment to go
        if not Path(f"/proc/{pid}").exists() or "Z" in _state(pid):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the stuck tesseract (pid {pid}) outlived its extraction")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1]
    except (OSError, IndexError):
        return "Z"


def test_without_tesseract_a_scanned_page_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # the child finds neither tesseract nor pdftoppm
    doc = load_file(FORMATS / "scanned.pdf")
    assert "Visitors sign in at the gate" in section_text(doc, "Page 1")
    assert doc.warnings == [
        "1 of 2 pages have no text layer and were not read: OCR is off: tesseract is not "
        "installed (Debian's tesseract-ocr); page 2"
    ]


def test_ocr_turned_off_is_said() -> None:
    doc = load_file(FORMATS / "scanned.pdf", ExtractLimits(ocr=False))
    assert doc.warnings == [
        "1 of 2 pages have no text layer and were not read: OCR is off (ingest.ocr); page 2"
    ]


# --- Bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("password.docx", "password-protected Word file"),
        ("password.xlsx", "password-protected Excel file"),
        ("password.odt", "password-protected OpenDocument text file"),
        ("password.pdf", "encrypted PDF"),
        ("truncated.docx", "corrupt or unreadable Word file: not a zip package"),
    ],
)
def test_protected_and_corrupt_files_are_refused(name: str, reason: str) -> None:
    with pytest.raises(LoadError, match=reason):
        load_file(FORMATS / name)


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("widget-guide.docx", "word/document.xml"),
        ("field-manual.epub", "OEBPS/sections/section0001.xhtml"),
    ],
)
def test_a_package_that_expands_to_gigabytes_is_refused_unread(name: str, member: str) -> None:
    bomb = zip_bomb(FORMATS / name, member, 1 << 30)
    assert len(bomb) < 2_000_000
    with pytest.raises(LoadError, match=r"expands to 1,074 MB \(the limit is 256 MB\): a zip bomb"):
        load_bytes(bomb, f"bomb{Path(name).suffix}")


def test_a_folder_of_good_and_bad_office_files(tmp_path: Path, models: Models) -> None:
    need_tool("tesseract", "OCR of scanned PDFs (apt-get install tesseract-ocr)")
    folder = tmp_path / "docs"
    folder.mkdir()
    good = ("widget-guide.docx", "release-talk.pptx", "capacity.xlsx", "scanned.pdf")
    good += ("field-manual.epub",)
    for name in (*good, "password.docx", "password.xlsx", "password.odt"):
        shutil.copy(FORMATS / name, folder / name)
    shutil.copy(FORMATS / "truncated.docx", folder / "broken.docx")
    shutil.copy(FORMATS / "password.pdf", folder / "password.pdf")
    (folder / "bomb.docx").write_bytes(
        zip_bomb(FORMATS / "widget-guide.docx", "word/document.xml", 1 << 30)
    )
    settings = make_settings(tmp_path / "data")
    summary = run(settings, models, folder)

    failed = {f.source: f.reason for f in summary.findings if f.check == "load"}
    assert sorted(failed) == [
        "docs/bomb.docx",
        "docs/broken.docx",
        "docs/password.docx",
        "docs/password.odt",
        "docs/password.pdf",
        "docs/password.xlsx",
    ]
    assert "zip bomb" in failed["docs/bomb.docx"]
    assert (summary.new, summary.failed) == (5, 6)
    question = "Which port does the widget server listen on?"
    source, section, text = top_hit(settings, models, question)
    assert (source, section) == ("docs/widget-guide.docx", "Ports and limits")
    assert "port | 7421 | The port the server listens on" in text
    question = "How long is a node down when upgrading from 2.8?"
    source, section, text = top_hit(settings, models, question)
    assert (source, section) == ("docs/release-talk.pptx", "Upgrade steps")
    assert "2.8 or older | about five minutes per node" in text
    question = "When does the depot shred worn widgets?"
    source, section, text = top_hit(settings, models, question)
    assert (source, section) == ("docs/scanned.pdf", "Page 2")  # read by OCR
    assert "first Monday of each month" in " ".join(text.split())
    question = "How often should the dust filter be replaced?"
    source, section, text = top_hit(settings, models, question)
    assert (source, section) == ("docs/field-manual.epub", "Servicing")
    assert "Dust filter | 6 months" in text
    question = "What are the support hours in Europe?"
    source, section, text = top_hit(settings, models, question)
    assert (source, section) == ("docs/capacity.xlsx", "Support hours")
    assert "Europe | 08:00 to 18:00 CET on weekdays" in text
