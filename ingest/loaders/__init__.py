"""Per-format loaders: the checks every file goes through, then dispatch on the file suffix."""

from __future__ import annotations

import codecs
from pathlib import Path, PurePosixPath

from ingest.document import ExtractLimits, LoadedDocument, LoadError
from ingest.loaders import html, markdown, office, pdf, rst, text

SUPPORTED_SUFFIXES: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".rst": "rst",
    ".rest": "rst",
    ".txt": "text",
    ".text": "text",
    ".pdf": "pdf",
    ".docx": "docx",
    ".epub": "epub",
    ".odt": "odt",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
}
# Fewer non-whitespace characters than this after extraction: nothing worth indexing.
MIN_TEXT_CHARS = 20

_TEXT_LOADERS = {"markdown": markdown.load, "html": html.load, "rst": rst.load, "text": text.load}
_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def load_file(path: Path, limits: ExtractLimits | None = None) -> LoadedDocument:
    """Load one file from disk; raises LoadError with a user-facing reason."""
    _format_of(path.name)  # fail fast on unsupported files, before reading them
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from exc
    return load_bytes(data, path.name, limits)


def load_bytes(data: bytes, name: str, limits: ExtractLimits | None = None) -> LoadedDocument:
    """Load a file's content, given its file name (for the format and the fallback title),
    its text cut at `limits` (default: ExtractLimits())."""
    limits = limits or ExtractLimits()
    fmt = _format_of(name)
    if not data.strip():
        raise LoadError("empty file")
    stem = PurePosixPath(name.replace("\\", "/")).stem
    binary = fmt == "pdf" or fmt in office.FORMAT_NAMES
    decoded = "" if binary else _decode(data, fmt)
    if not binary and not decoded.strip():
        raise LoadError("empty file")
    try:
        if fmt == "pdf":
            doc = pdf.load(data, stem, limits)
        elif fmt in office.FORMAT_NAMES:
            doc = office.load(data, fmt, stem, limits)
        else:
            doc = _TEXT_LOADERS[fmt](decoded, stem)
    except RecursionError as exc:  # the parsers and tree walks recurse once per nesting level
        raise LoadError("too deeply nested to read") from exc
    if sum(not c.isspace() for c in doc.text) < MIN_TEXT_CHARS:
        if fmt == "pdf":
            raise LoadError("no extractable text (scanned or image-only PDF?)")
        if binary:
            raise LoadError("no extractable text")
        raise LoadError("no text left after cleaning")
    _cut_text(doc, limits.max_file_chars)
    return doc


def _cut_text(doc: LoadedDocument, max_chars: int) -> None:
    """Cut a document's paragraphs after `max_chars` characters in all, and say so.

    The text formats are bounded by the file size alone (ingest.max_file_mb), and every
    character is chunked and embedded; a PDF or office document arrives already cut by
    its loader.
    """
    total = sum(len(p) for s in doc.sections for p in s.paragraphs)
    if total <= max_chars:
        return
    room = max_chars
    for section in doc.sections:
        kept = []
        for paragraph in section.paragraphs:
            if room > 0:
                kept.append(paragraph[:room])
            room -= len(paragraph)
        section.paragraphs = kept
    doc.sections = [s for s in doc.sections if s.paragraphs]
    doc.limits.append(f"text cut at {max_chars} characters (ingest.max_file_chars) of {total}")


def _format_of(name: str) -> str:
    """The format name for a file name's suffix; LoadError if it is not supported."""
    suffix = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(f"unsupported file type {suffix or '(no suffix)'}")
    return SUPPORTED_SUFFIXES[suffix]


def _decode(data: bytes, fmt: str) -> str:
    """Decode a text format strictly: UTF-8 (BOM allowed), or an HTML page's declared charset."""
    if data.startswith(_UTF16_BOMS):
        raise LoadError("not valid UTF-8 text: UTF-16 encoded (save the file as UTF-8)")
    if b"\x00" in data:
        raise LoadError("binary content, not text (NUL bytes found)")
    encoding, offset = "utf-8", 0
    if data.startswith(_UTF8_BOM):
        offset = len(_UTF8_BOM)
    elif fmt == "html" and (declared := html.declared_charset(data)) is not None:
        encoding = _text_codec(declared)
    try:
        decoded = data[offset:].decode(encoding)
    except UnicodeDecodeError as exc:
        label = "UTF-8" if encoding == "utf-8" else encoding
        bad = data[offset + exc.start]
        raise LoadError(
            f"not valid {label} text: invalid byte 0x{bad:02x} at offset {offset + exc.start}"
        ) from exc
    return decoded.replace("\r\n", "\n").replace("\r", "\n")


def _text_codec(declared: str) -> str:
    """Python's codec for a declared charset; "utf-8" if unknown, not a text codec, or UTF-16/32."""
    try:
        name = codecs.lookup(declared).name
        b"x".decode(name)  # raises LookupError for bytes-to-bytes codecs such as base64 or zlib
    except LookupError:
        return "utf-8"
    except UnicodeDecodeError:
        pass  # a real text codec that just dislikes this one-byte probe (UTF-16)
    # As browsers do: a page that got this far has no NUL bytes, so it cannot be UTF-16/32.
    return "utf-8" if name.startswith(("utf-16", "utf-32")) else name
