"""Office documents and e-books (.docx, .odt, .pptx, .xlsx, .epub): zip packages of XML,
read in a child process.

Before anything parses a package, its zip directory is checked here: a password-protected
Office file is not a zip at all (an OLE container holding the encrypted package), and a
zip bomb declares its uncompressed sizes in the directory, which Python's zipfile then
holds every member to (it stops reading a member at its declared size). What passes is
read by ingest/loaders/office_extract.py in a child process under the file's time budget
(ingest.extract_timeout_s), as PDFs are; the child stops at ingest.max_file_chars.
"""

from __future__ import annotations

import zipfile
from io import BytesIO
from typing import Any

from ingest.document import ExtractLimits, LoadedDocument, LoadError, Section
from ingest.loaders.child import run_child

FORMAT_NAMES = {
    "docx": "Word",
    "epub": "EPUB",
    "odt": "OpenDocument text",
    "pptx": "PowerPoint",
    "xlsx": "Excel",
}
# What a package may expand to, all members together, and how many members it may have.
# A real document's XML is rarely over a few megabytes; its pictures are stored, not
# compressed, and are not read at all.
MAX_UNZIPPED_BYTES = 256_000_000
MAX_MEMBERS = 10_000
# The first bytes of an OLE2 compound file: what Office (and LibreOffice) write for a
# password-protected .docx/.xlsx/.pptx (the encrypted package inside), and the old .doc/.xls.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def load(data: bytes, fmt: str, stem: str, limits: ExtractLimits | None = None) -> LoadedDocument:
    """Read an office document into sections (see office_extract.py for how each format maps)."""
    limits = limits or ExtractLimits()
    check_package(data, fmt)
    lines, timed_out = run_child(
        "ingest.loaders.office_extract", [fmt, str(limits.max_file_chars)], data, limits.timeout_s
    )
    head = lines[0] if lines else {}
    if "error" in head:
        raise LoadError(str(head["error"]))
    budget = f"{limits.timeout_s:g} s (ingest.extract_timeout_s)"
    sections = [_section(line) for line in lines if "heading" in line]
    if timed_out and not sections:
        raise LoadError(f"text extraction took longer than {budget}; file skipped")
    if "title" not in head:
        raise LoadError(f"corrupt or unreadable {FORMAT_NAMES[fmt]} file: the extraction stopped")
    notes = []
    if any("stop" in line for line in lines):
        notes.append(
            f"text cut at {limits.max_file_chars} characters (ingest.max_file_chars); "
            "the rest of the file was not read"
        )
    elif timed_out:
        notes.append(f"text extraction stopped after {budget}; the rest of the file was not read")
    warnings = [str(line["warning"]) for line in lines if "warning" in line]
    if not timed_out and not any("end" in line for line in lines):
        failure = next((str(line["error"]) for line in lines if "error" in line), "it ended")
        warnings.append(f"text extraction stopped part-way ({failure})")
    title = " ".join(str(head["title"]).split())
    if not title and fmt != "xlsx":  # a spreadsheet's first sheet name is no title
        title = next((s.heading for s in sections if s.heading), "")
    title = title or stem
    return LoadedDocument(title=title, sections=sections, warnings=warnings, limits=notes)


def check_package(data: bytes, fmt: str) -> None:
    """LoadError for an encrypted, corrupt or over-large package; reads only the zip directory."""
    name = FORMAT_NAMES[fmt]
    if data.startswith(_OLE_MAGIC):
        raise LoadError(
            f"password-protected {name} file (or an old binary Office file with a "
            f".{fmt} name): save it without a password to index it"
        )
    try:
        members = zipfile.ZipFile(BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise LoadError(f"corrupt or unreadable {name} file: not a zip package ({exc})") from exc
    if len(members) > MAX_MEMBERS:
        raise LoadError(
            f"{len(members)} parts in the package (the limit is {MAX_MEMBERS}); not read"
        )
    expanded = sum(m.file_size for m in members)
    if expanded > MAX_UNZIPPED_BYTES:
        raise LoadError(
            f"compressed document expands to {expanded / 1e6:,.0f} MB (the limit is "
            f"{MAX_UNZIPPED_BYTES / 1e6:,.0f} MB): a zip bomb? not read"
        )
    if any(m.flag_bits & 0x1 for m in members):
        raise LoadError(f"password-protected {name} file (encrypted zip parts); not read")
    if fmt == "odt" and _odf_encrypted(data):
        raise LoadError(f"password-protected {name} file: save it without a password to index it")
    if fmt == "epub" and _epub_encrypted(data):
        raise LoadError("encrypted (DRM-protected) EPUB: its chapters cannot be read")


def _odf_encrypted(data: bytes) -> bool:
    """Whether an ODF package's manifest says its parts are encrypted (a password was set)."""
    with zipfile.ZipFile(BytesIO(data)) as package:
        try:
            manifest = package.read("META-INF/manifest.xml")
        except KeyError:
            return False
    return b"encryption-data" in manifest


def _section(line: dict[str, Any]) -> Section:
    return Section(
        heading=str(line["heading"]),
        paragraphs=[str(p) for p in line["paragraphs"]],
        level=int(line["level"]),
    )


def _epub_encrypted(data: bytes) -> bool:
    """Whether META-INF/encryption.xml covers chapters (DRM), not just fonts (obfuscation)."""
    with zipfile.ZipFile(BytesIO(data)) as package:
        try:
            listing = package.read("META-INF/encryption.xml")
        except KeyError:
            return False
    return any(ext in listing.lower() for ext in (b".xhtml", b".html", b".htm"))
