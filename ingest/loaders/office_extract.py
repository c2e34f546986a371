"""The sections of an office document, extracted in a child process (ingest/loaders/office.py).

Run as `python -m ingest.loaders.office_extract FORMAT MAX_FILE_CHARS` with the file on
stdin. Lines, in order: {"error": reason} alone if the file cannot be read; else
{"title": core-properties title or ""}, then one {"heading", "level", "paragraphs"} per
section, then {"stop": "file"} if MAX_FILE_CHARS was reached (the text is cut exactly
there), or {"end": true} when the whole file was read. {"warning": ...} lines may come
between sections.

How each format maps to sections:
- docx: paragraphs styled "Title" / "Heading N" (or styles based on them) start a section
  of level N (Title: 1); list paragraphs become "- item" lines; a table is one paragraph,
  a row per line, cells joined by " | ".
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from ingest.loaders.blocks import list_text
from ingest.loaders.odf_extract import odt

ROWS_PER_PARAGRAPH = 20


class _Sections:
    """Sections being built, cut at a character budget."""

    def __init__(self, max_chars: int) -> None:
        self.room = max_chars
        self.heading = ""
        self.level = 0
        self.paragraphs: list[str] = []
        self.cut = False

    def start(self, heading: str, level: int) -> Iterator[dict[str, Any]]:
        """Close the current section (yielding it) and open another."""
        yield from self.flush()
        self.heading, self.level = " ".join(heading.split()), level

    def add(self, text: str) -> None:
        text = text.strip()
        if not text or self.cut:
            return
        if len(text) >= self.room:
            text, self.cut = text[: self.room], True
        self.room -= len(text)
        self.paragraphs.append(text)

    def flush(self) -> Iterator[dict[str, Any]]:
        if self.paragraphs or self.heading:
            yield {"heading": self.heading, "level": self.level, "paragraphs": self.paragraphs}
        self.heading, self.level, self.paragraphs = "", 0, []


def extract(fmt: str, data: bytes, max_chars: int) -> Iterator[dict[str, Any]]:
    """The lines described above."""
    readers = {"docx": _docx, "epub": _epub, "odt": odt, "pptx": _pptx, "xlsx": _xlsx}
    try:
        title, blocks = readers[fmt](data)
    except Exception as exc:  # the libraries raise many types on damaged files
        yield {"error": f"corrupt or unreadable file: {_short(exc)}"}
        return
    yield {"title": title}
    sections = _Sections(max_chars)
    for kind, text, level in blocks:
        if kind == "heading":
            yield from sections.start(text, level)
        elif kind == "warning":
            yield {"warning": text}
        else:
            sections.add(text)
        if sections.cut:
            yield from sections.flush()
            yield {"stop": "file"}
            return
    yield from sections.flush()
    yield {"end": True}


# A block: ("heading", text, level) | ("text", text, 0) | ("warning", text, 0).
Block = tuple[str, str, int]


def _docx(data: bytes) -> tuple[str, Iterator[Block]]:
    import docx
    from docx.table import Table

    document = docx.Document(BytesIO(data))
    title = document.core_properties.title or ""

    def blocks() -> Iterator[Block]:
        items: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                if items:
                    yield "text", list_text(items, ordered=False), 0
                    items = []
                yield "text", _table_text(block.rows), 0
                continue
            level = _heading_level(block.style)
            text = block.text
            if level and text.strip():
                if items:
                    yield "text", list_text(items, ordered=False), 0
                    items = []
                yield "heading", text, level
                continue
            p_pr = block._p.pPr
            if p_pr is not None and p_pr.numPr is not None:
                items.append(" ".join(text.split()))
                continue
            if items:
                yield "text", list_text(items, ordered=False), 0
                items = []
            yield "text", text, 0
        if items:
            yield "text", list_text(items, ordered=False), 0

    return title, blocks()


def _heading_level(style: Any) -> int:
    """N for a "Heading N" style (or one based on it), 1 for "Title", else 0."""
    seen = 0
    while style is not None and seen < 10:
        name = (style.name or "").lower()
        if name == "title":
            return 1
        if name.startswith("heading "):
            digits = name.removeprefix("heading ").strip()
            return int(digits) if digits.isdigit() else 1
        style, seen = style.base_style, seen + 1
    return 0


def _table_text(rows: Any) -> str:
    """A docx or pptx table's rows as lines, cells joined by " | "; a merged cell once."""
    lines = []
    for row in rows:
        cells, last = [], None
        for cell in row.cells:
            if cell._tc is last or getattr(cell, "is_spanned", False):  # a merged cell once
                continue
            last = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _pptx(data: bytes) -> tuple[str, Iterator[Block]]:
    import pptx

    presentation = pptx.Presentation(BytesIO(data))
    title = presentation.core_properties.title or ""

    def blocks() -> Iterator[Block]:
        hidden = 0
        for number, slide in enumerate(presentation.slides, start=1):
            if slide._element.get("show") in ("0", "false"):
                hidden += 1
                continue
            heading_shape = slide.shapes.title
            heading = heading_shape.text_frame.text if heading_shape is not None else ""
            yield "heading", " ".join(heading.split()) or f"Slide {number}", 1
            title_id = heading_shape.shape_id if heading_shape is not None else None
            others = [shape for shape in slide.shapes if shape.shape_id != title_id]
            for text in _shapes_text(others):
                yield "text", text, 0
            if slide.has_notes_slide:
                frame = slide.notes_slide.notes_text_frame
                notes = " ".join(frame.text.split()) if frame is not None else ""
                if notes:
                    yield "text", f"Notes: {notes}", 0
        if hidden:
            yield "warning", f"{hidden} hidden slides not indexed", 0

    return title, blocks()


def _shapes_text(shapes: list[Any]) -> Iterator[str]:
    """The text of slide shapes in reading order; groups are read inside."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER

    bullets = {PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT}
    for shape in sorted(shapes, key=lambda s: (s.top or 0, s.left or 0)):
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shapes_text(list(shape.shapes))
        elif getattr(shape, "has_table", False):
            yield _table_text(shape.table.rows)
        elif shape.has_text_frame:
            listed = shape.is_placeholder and shape.placeholder_format.type in bullets
            lines = []
            for paragraph in shape.text_frame.paragraphs:
                text = " ".join(paragraph.text.split())
                if text:
                    lines.append(f"{'  ' * paragraph.level}- {text}" if listed else text)
            if lines:
                yield "\n".join(lines)


_OPF = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_XHTML_TYPES = {"application/xhtml+xml", "text/html"}


def _epub(data: bytes) -> tuple[str, Iterator[Block]]:
    import posixpath
    import zipfile

    from lxml import etree

    from ingest.loaders import html

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    package = zipfile.ZipFile(BytesIO(data))
    container = etree.fromstring(package.read("META-INF/container.xml"), parser)
    rootfile = container.find(".//c:rootfile", _OPF)
    if rootfile is None or not rootfile.get("full-path"):
        raise ValueError("no package document in META-INF/container.xml")
    opf_path = str(rootfile.get("full-path"))
    opf = etree.fromstring(package.read(opf_path), parser)
    found = opf.find(".//dc:title", _OPF)
    title = (found.text or "") if found is not None else ""
    base = posixpath.dirname(opf_path)
    manifest = {
        item.get("id"): item
        for item in opf.iterfind(".//opf:manifest/opf:item", _OPF)
        if item.get("media-type") in _XHTML_TYPES
    }
    chapters = [
        posixpath.normpath(posixpath.join(base, str(manifest[ref].get("href"))))
        for ref in (i.get("idref") for i in opf.iterfind(".//opf:spine/opf:itemref", _OPF))
        if ref in manifest
    ]

    toc = _epub_toc(package, opf, base, parser)

    def blocks() -> Iterator[Block]:
        for name in chapters:
            try:
                page = package.read(name).decode("utf-8", "replace")
            except KeyError:
                yield "warning", f"chapter {name} is missing from the package", 0
                continue
            chapter = html.load(page, posixpath.basename(name))
            for section in chapter.sections:
                if section.heading:
                    yield "heading", section.heading, section.level
                elif name in toc:
                    yield "heading", toc[name], 1
                    if section.paragraphs and section.paragraphs[0] == toc[name]:
                        section.paragraphs.pop(0)  # the heading, written as a paragraph
                for paragraph in section.paragraphs:
                    yield "text", paragraph, 0

    return title, blocks()


def _epub_toc(package: Any, opf: Any, base: str, parser: Any) -> dict[str, str]:
    """Chapter file -> its title in the table of contents (first entry per file)."""
    import posixpath

    from lxml import etree

    items = list(opf.iterfind(".//opf:manifest/opf:item", _OPF))
    nav = next((i for i in items if "nav" in (i.get("properties") or "").split()), None)
    ncx = next((i for i in items if i.get("media-type") == "application/x-dtbncx+xml"), None)
    entries: list[tuple[str, str]] = []
    if nav is not None:
        path = posixpath.normpath(posixpath.join(base, str(nav.get("href"))))
        tree = etree.fromstring(package.read(path), parser)
        links = tree.iterfind(".//{http://www.w3.org/1999/xhtml}a")
        entries = [(str(a.get("href") or ""), "".join(a.itertext())) for a in links]
    elif ncx is not None:
        path = posixpath.normpath(posixpath.join(base, str(ncx.get("href"))))
        tree = etree.fromstring(package.read(path), parser)
        ns = "{http://www.daisy.org/z3986/2005/ncx/}"
        for point in tree.iter(f"{ns}navPoint"):
            label, content = point.find(f"{ns}navLabel/{ns}text"), point.find(f"{ns}content")
            if label is not None and content is not None:
                entries.append((str(content.get("src") or ""), label.text or ""))
    folder = posixpath.dirname(path) if entries else base
    toc: dict[str, str] = {}
    for href, label in entries:
        target = posixpath.normpath(posixpath.join(folder, href.split("#")[0]))
        if " ".join(label.split()):
            toc.setdefault(target, " ".join(label.split()))
    return toc


def _xlsx(data: bytes) -> tuple[str, Iterator[Block]]:
    import openpyxl

    # read_only streams the rows (a large sheet is not held in memory); data_only gives
    # the values formulas last computed, as saved by the application.
    book = openpyxl.load_workbook(BytesIO(data), read_only=True, data_only=True)
    title = book.properties.title or ""

    def blocks() -> Iterator[Block]:
        hidden = 0
        for sheet in book.worksheets:
            if sheet.sheet_state != "visible":
                hidden += 1
                continue
            yield "heading", sheet.title, 1
            header: str | None = None
            rows: list[str] = []
            for values in sheet.iter_rows(values_only=True):
                cells = [_cell_text(v) for v in values]
                while cells and not cells[-1]:
                    cells.pop()
                if not cells:
                    continue
                line = " | ".join(cells)
                if header is None:
                    header = line
                elif not rows:
                    rows.append(header)
                rows.append(line)
                if len(rows) >= ROWS_PER_PARAGRAPH:
                    yield "text", "\n".join(rows), 0
                    rows = []
            if rows or header is not None:
                yield "text", "\n".join(rows or [header or ""]), 0
        if hidden:
            yield "warning", f"{hidden} hidden sheets not indexed", 0

    return title, blocks()


def _cell_text(value: object) -> str:
    """A cell's value as text: whole floats without ".0", dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return " ".join(str(value).split())


def _short(exc: BaseException) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message if len(message) <= 120 else message[:117] + "..."


def main() -> None:
    """Read a file from stdin, write its lines to stdout (flushed: a kill keeps them)."""
    logging.disable(logging.WARNING)
    fmt, max_chars = sys.argv[1], int(sys.argv[2])
    data = sys.stdin.buffer.read()
    out = sys.stdout
    try:
        for line in extract(fmt, data, max_chars):
            out.write(json.dumps(line) + "\n")
            out.flush()
    except BaseException as exc:  # e.g. MemoryError: said to the parent, not as a traceback
        out.write(json.dumps({"error": f"could not be parsed: {type(exc).__name__}"}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
