"""PDF loader: one section per page, with the text pypdf can extract, or OCR where a page
has no text layer (a scan).

The extraction runs in a child process (ingest/loaders/pdf_extract.py) under the file's
time budget: killing a process is the one way to stop a page whose extraction blows up,
and the pages read before the budget ran out are kept. The child costs a Python start
per PDF (a fraction of a second), small beside chunking and embedding a PDF.
"""

from __future__ import annotations

from typing import Any

from ingest.document import ExtractLimits, LoadedDocument, LoadError, Section
from ingest.loaders.child import run_child
from ingest.loaders.text import split_paragraphs

_MAX_TITLE_CHARS = 100


def load(data: bytes, stem: str, limits: ExtractLimits | None = None) -> LoadedDocument:
    """Turn a PDF into one section per page ("Page 1", "Page 2", ...), within `limits`."""
    limits = limits or ExtractLimits()
    lines, timed_out = _extract(data, limits)
    head = lines[0] if lines else {}
    if "error" in head:
        raise LoadError(str(head["error"]))
    budget = f"{limits.timeout_s:g} s (ingest.extract_timeout_s)"
    pages = [line for line in lines[1:] if "text" in line]
    if timed_out and not pages:
        raise LoadError(f"text extraction took longer than {budget}; file skipped")
    if "pages" not in head:
        raise LoadError("corrupt or unreadable PDF: the text extraction stopped")
    page_count = int(head["pages"])

    sections: list[Section] = []
    # Pages without text, by what OCR said of them (see pdf_extract.py).
    textless: dict[str, list[int]] = {}
    for number, page in enumerate(pages, start=1):
        paragraphs = split_paragraphs(str(page["text"]))
        if not paragraphs:
            textless.setdefault(str(page.get("ocr") or "read"), []).append(number)
        sections.append(Section(heading=f"Page {number}", paragraphs=paragraphs, level=0))

    ocr_notes = _ocr_notes(textless, len(pages), limits)
    if ocr_notes and not any(s.paragraphs for s in sections):
        raise LoadError(f"no extractable text: {ocr_notes[0]}")
    empty = len(textless.get("read", []))
    warnings = [f"{empty} of {len(pages)} pages had no extractable text"] if empty else []
    warnings += ocr_notes
    limit_notes = _limit_notes(lines, pages, page_count, limits)
    if len(pages) < page_count and timed_out:
        limit_notes.append(
            f"text extraction stopped after {budget}: {len(pages)} of {page_count} pages read"
        )
    elif len(pages) < page_count and not any("stop" in line for line in lines):
        # The child died mid-way (out of memory, say): keep what it sent.
        failure = next((str(line["error"]) for line in lines if "error" in line), "it ended")
        warnings.append(
            f"text extraction stopped at page {len(pages) + 1} ({failure}): "
            f"{len(pages)} of {page_count} pages read"
        )
    title = " ".join(str(head.get("title", "")).split()) or _first_line(sections) or stem
    return LoadedDocument(title=title, sections=sections, warnings=warnings, limits=limit_notes)


def _extract(data: bytes, limits: ExtractLimits) -> tuple[list[dict[str, Any]], bool]:
    """The child's lines (see pdf_extract.py) and whether the time budget ran out."""
    languages = limits.ocr_languages if limits.ocr else ""
    args = [
        str(limits.max_page_chars),
        str(limits.max_file_chars),
        languages,
        str(limits.ocr_page_timeout_s),
    ]
    return run_child("ingest.loaders.pdf_extract", args, data, limits.timeout_s)


def _ocr_notes(textless: dict[str, list[int]], page_count: int, limits: ExtractLimits) -> list[str]:
    """Why pages without a text layer were not read by OCR, in words that name the fix."""
    notes = []
    for state, reason in (
        ("unavailable", "OCR is off: tesseract is not installed (Debian's tesseract-ocr)"),
        ("off", "OCR is off (ingest.ocr)"),
    ):
        if state in textless:
            notes.append(
                f"{len(textless[state])} of {page_count} pages have no text layer and were "
                f"not read: {reason}; page {_page_list(textless[state])}"
            )
    if "timeout" in textless:
        notes.append(
            f"OCR of {len(textless['timeout'])} of {page_count} pages took longer than "
            f"{limits.ocr_page_timeout_s:g} s (ingest.ocr_page_timeout_s); left out: "
            f"page {_page_list(textless['timeout'])}"
        )
    if "failed" in textless:
        notes.append(
            f"OCR failed on {len(textless['failed'])} of {page_count} pages: "
            f"page {_page_list(textless['failed'])}"
        )
    return notes


def _page_list(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:5])) + (", ..." if len(numbers) > 5 else "")


def _limit_notes(
    lines: list[dict[str, Any]], pages: list[dict[str, Any]], page_count: int, limits: ExtractLimits
) -> list[str]:
    """What the character bounds cut, in words that name the settings."""
    notes = []
    cut_pages = [n for n, page in enumerate(pages, start=1) if page.get("cut") == "page"]
    if cut_pages:
        shown = ", ".join(map(str, cut_pages[:5])) + (", ..." if len(cut_pages) > 5 else "")
        notes.append(
            f"text of {len(cut_pages)} of {page_count} pages cut at "
            f"{limits.max_page_chars} characters (ingest.max_page_chars): page {shown}"
        )
    if any(page.get("cut") == "file" for page in pages) or any("stop" in line for line in lines):
        notes.append(
            f"text cut at {limits.max_file_chars} characters (ingest.max_file_chars): "
            f"{len(pages)} of {page_count} pages read"
        )
    return notes


def _first_line(sections: list[Section]) -> str:
    """The first non-empty line of page 1 if it is short enough to be a title, else ""."""
    if not sections or not sections[0].paragraphs:
        return ""
    line = sections[0].paragraphs[0].splitlines()[0].strip()
    return line if len(line) < _MAX_TITLE_CHARS else ""
