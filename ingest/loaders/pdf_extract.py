"""The text of a PDF's pages, extracted in a child process that ingest/loaders/pdf.py runs.

pypdf is pure Python, and one page can cost minutes: a 1 KB compressed content stream
that repeats a text-show operator a million times expands to megabytes of operators,
all parsed inside one `extract_text` call that nothing in the same process can
interrupt (a check between pages comes too late). So the loader runs this module as
`python -m ingest.loaders.pdf_extract MAX_PAGE_CHARS MAX_FILE_CHARS` with the PDF on
stdin, reads one JSON line per page from stdout, and kills the child when the file's
time budget is spent, keeping the pages that came before.

Lines, in order: {"error": reason} alone if the PDF cannot be read; else
{"pages": count, "title": metadata title}, then per page {"text": its text, cut to the
bounds, "cut": "page" | "file" | null}, then {"stop": "file"} if max_file_chars was
reached before the last page.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from pypdf import PasswordType, PdfReader


def extract(data: bytes, max_page_chars: int, max_file_chars: int) -> Iterator[dict[str, Any]]:
    """The lines described above, for one PDF's bytes."""
    # pypdf raises many exception types on damaged files (ValueError, KeyError, its own
    # errors...); all of them mean the same to the user.
    try:
        reader = PdfReader(BytesIO(data))
        if reader.is_encrypted and not _opens_without_password(reader):
            yield {"error": "encrypted PDF"}
            return
        pages = list(reader.pages)
        title = (reader.metadata.title if reader.metadata else None) or ""
    except Exception as exc:
        yield {"error": f"corrupt or unreadable PDF: {_short(exc)}"}
        return
    yield {"pages": len(pages), "title": str(title)}
    total = 0
    for page in pages:
        if total >= max_file_chars:
            yield {"stop": "file"}
            return
        try:
            text = (page.extract_text() or "").replace("\x00", "")
        except Exception:  # one damaged page should not lose the others
            text = ""
        room = max_file_chars - total
        limit = min(room, max_page_chars)
        cut = None if len(text) <= limit else "page" if max_page_chars <= room else "file"
        text = text[:limit]
        total += len(text)
        yield {"text": text, "cut": cut}


def _opens_without_password(reader: PdfReader) -> bool:
    """Whether an encrypted PDF opens with the empty user password (common for "protected" PDFs)."""
    try:
        return reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except Exception:  # e.g. an unsupported cipher: just as unreadable as a wrong password
        return False


def _short(exc: BaseException) -> str:
    """A one-line, bounded description of a parser error."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message if len(message) <= 120 else message[:117] + "..."


def main() -> None:
    """Read a PDF from stdin, write its lines to stdout (flushed per page: a kill keeps them)."""
    # pypdf logs a warning per damaged object, possibly millions: the parent does not read them.
    logging.disable(logging.WARNING)
    max_page_chars, max_file_chars = int(sys.argv[1]), int(sys.argv[2])
    data = sys.stdin.buffer.read()
    out = sys.stdout
    try:
        for line in extract(data, max_page_chars, max_file_chars):
            out.write(json.dumps(line) + "\n")
            out.flush()
    except BaseException as exc:  # e.g. MemoryError: said to the parent, not as a traceback
        out.write(json.dumps({"error": f"could not be parsed: {type(exc).__name__}"}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
