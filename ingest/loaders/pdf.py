"""PDF loader: one section per page, with the text pypdf can extract."""

from __future__ import annotations

from io import BytesIO

from pypdf import PasswordType, PdfReader

from ingest.document import LoadedDocument, LoadError, Section
from ingest.loaders.text import split_paragraphs

_MAX_TITLE_CHARS = 100


def load(data: bytes, stem: str) -> LoadedDocument:
    """Turn a PDF into one section per page ("Page 1", "Page 2", ...)."""
    # pypdf raises many exception types on damaged files (ValueError, KeyError, its own
    # errors...); all of them mean the same to the user.
    try:
        reader = PdfReader(BytesIO(data))
        if reader.is_encrypted and not _opens_without_password(reader):
            raise LoadError("encrypted PDF")
        pages = list(reader.pages)
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(f"corrupt or unreadable PDF: {_short(exc)}") from exc

    sections: list[Section] = []
    empty = 0
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception:  # one damaged page should not lose the others
            text = ""
        paragraphs = split_paragraphs(text.replace("\x00", ""))
        empty += not paragraphs
        sections.append(Section(heading=f"Page {number}", paragraphs=paragraphs, level=0))

    warnings = [f"{empty} of {len(pages)} pages had no extractable text"] if empty else []
    title = " ".join(str(meta_title).split()) or _first_line(sections) or stem
    return LoadedDocument(title=title, sections=sections, warnings=warnings)


def _opens_without_password(reader: PdfReader) -> bool:
    """Whether an encrypted PDF opens with the empty user password (common for "protected" PDFs)."""
    try:
        return reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except Exception:  # e.g. an unsupported cipher: just as unreadable as a wrong password
        return False


def _first_line(sections: list[Section]) -> str:
    """The first non-empty line of page 1 if it is short enough to be a title, else ""."""
    if not sections or not sections[0].paragraphs:
        return ""
    line = sections[0].paragraphs[0].splitlines()[0].strip()
    return line if len(line) < _MAX_TITLE_CHARS else ""


def _short(exc: Exception) -> str:
    """A one-line, bounded description of a parser error."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message if len(message) <= 120 else message[:117] + "..."
