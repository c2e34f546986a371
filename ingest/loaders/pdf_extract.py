"""The text of a PDF's pages, extracted in a child process that ingest/loaders/pdf.py runs.

pypdf is pure Python, and one page can cost minutes: a 1 KB compressed content stream
that repeats a text-show operator a million times expands to megabytes of operators,
all parsed inside one `extract_text` call that nothing in the same process can
interrupt (a check between pages comes too late). So the loader runs this module as
`python -m ingest.loaders.pdf_extract MAX_PAGE_CHARS MAX_FILE_CHARS [OCR_LANGUAGES
OCR_PAGE_TIMEOUT_S]` with the PDF on stdin, reads one JSON line per page from stdout,
and kills the child when the file's time budget is spent, keeping the pages that came
before.

Lines, in order: {"error": reason} alone if the PDF cannot be read; else
{"pages": count, "title": metadata title}, then per page {"text": its text, cut to the
bounds, "cut": "page" | "file" | null, "ocr": see below}, then {"stop": "file"} if
max_file_chars was reached before the last page.

OCR: a page without a text layer is rasterised by pdftoppm (poppler-utils) and read by
tesseract, each a program of its own run under the page's budget (OCR_PAGE_TIMEOUT_S),
and so stopped with this process when the file's budget runs out. pdftoppm rather than
pypdfium2: a Debian package beside tesseract, no Python dependency, and a process that
a timeout can stop. Such a page's line says "ocr": "read" | "timeout" | "failed" |
"unavailable" (tesseract or pdftoppm not installed) | "off" (OCR_LANGUAGES empty).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

from pypdf import PasswordType, PdfReader

OCR_DPI = 300  # tesseract's own advice for body text


class _Ocr:
    """OCR of single pages of one PDF (written to a temporary file for pdftoppm)."""

    def __init__(self, data: bytes, languages: str, page_timeout_s: float) -> None:
        self.data, self.languages, self.page_timeout_s = data, languages, page_timeout_s
        self.path: Path | None = None
        tools = shutil.which("tesseract") and shutil.which("pdftoppm")
        self.state = "off" if not languages else None if tools else "unavailable"

    def page(self, number: int) -> tuple[str, str]:
        """(text, status) of page `number` (1-based)."""
        if self.state is not None:
            return "", self.state
        if self.path is None:
            with tempfile.NamedTemporaryFile(suffix=".pdf", delete=False) as file:
                file.write(self.data)
            self.path = Path(file.name)
        deadline = time.monotonic() + self.page_timeout_s
        try:
            image = subprocess.run(
                ["pdftoppm", "-f", str(number), "-l", str(number), "-r", str(OCR_DPI),
                 "-gray", "-png", str(self.path)],
                capture_output=True, timeout=self.page_timeout_s, check=True,
            ).stdout  # fmt: skip
            text = subprocess.run(
                ["tesseract", "stdin", "stdout", "-l", self.languages],
                input=image, capture_output=True, check=True,
                timeout=max(deadline - time.monotonic(), 0.01),
            ).stdout.decode("utf-8", "replace")  # fmt: skip
        except subprocess.TimeoutExpired:
            return "", "timeout"
        except (subprocess.CalledProcessError, OSError):
            return "", "failed"
        return text, "read"

    def close(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def extract(
    data: bytes,
    max_page_chars: int,
    max_file_chars: int,
    ocr_languages: str = "",
    ocr_page_timeout_s: float = 30.0,
) -> Iterator[dict[str, Any]]:
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
    ocr = _Ocr(data, ocr_languages, ocr_page_timeout_s)
    try:
        yield from _pages(pages, ocr, max_page_chars, max_file_chars)
    finally:
        ocr.close()


def _pages(
    pages: list[Any], ocr: _Ocr, max_page_chars: int, max_file_chars: int
) -> Iterator[dict[str, Any]]:
    total = 0
    for number, page in enumerate(pages, start=1):
        if total >= max_file_chars:
            yield {"stop": "file"}
            return
        try:
            text = (page.extract_text() or "").replace("\x00", "")
        except Exception:  # one damaged page should not lose the others
            text = ""
        ocr_state = None
        if not text.strip():
            text, ocr_state = ocr.page(number)
            text = text.replace("\x00", "")
        room = max_file_chars - total
        limit = min(room, max_page_chars)
        cut = None if len(text) <= limit else "page" if max_page_chars <= room else "file"
        text = text[:limit]
        total += len(text)
        yield {"text": text, "cut": cut, "ocr": ocr_state}


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
    ocr_languages = sys.argv[3] if len(sys.argv) > 3 else ""
    ocr_page_timeout_s = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
    data = sys.stdin.buffer.read()
    out = sys.stdout
    try:
        for line in extract(
            data, max_page_chars, max_file_chars, ocr_languages, ocr_page_timeout_s
        ):
            out.write(json.dumps(line) + "\n")
            out.flush()
    except BaseException as exc:  # e.g. MemoryError: said to the parent, not as a traceback
        out.write(json.dumps({"error": f"could not be parsed: {type(exc).__name__}"}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
