"""HTML loader: the main content of a page as sections, without navigation or hidden text."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString, Tag

from ingest.document import LoadedDocument, Section

# Never content: code, chrome around the page, widgets. Embedded media fallbacks are noise too.
_REMOVED_TAGS = [
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "button",
    "select",
    "textarea",
    "canvas",
    "object",
    "embed",
]
# Sphinx chrome: permalink pilcrows, sidebar, prev/next bar and footer; DocBook's
# (the PostgreSQL manual's) "Prev | Up | Home | Next" bars, which differ on every page
# and so escape the boilerplate check.
_SPHINX_NOISE = (
    "a.headerlink, div.sphinxsidebar, div.related, div.footer, div.navheader, div.navfooter"
)
_CONTENT_ROOTS = ["main", "[role=main]", "article", "div.body", "body"]
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = _HEADINGS | {"p", "pre", "li", "dt", "dd", "blockquote", "table", "figcaption"}
# Elements whose text flows into the surrounding line; every other tag breaks the line.
_INLINE = {
    "a",
    "abbr",
    "b",
    "bdi",
    "bdo",
    "cite",
    "code",
    "data",
    "del",
    "dfn",
    "em",
    "font",
    "i",
    "ins",
    "kbd",
    "label",
    "mark",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "time",
    "tt",
    "u",
    "var",
    "wbr",
    "img",
}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
# An XHTML page's first line: <?xml version="1.0" encoding="UTF-8"?>
_XML_DECLARATION = re.compile(r"\A\s*<\?xml\b[^>]*\?>")
_XML_ENCODING = re.compile(rb"\A<\?xml\b[^>]*\bencoding\s*=\s*[\"']([A-Za-z0-9_.:-]+)")


def declared_charset(data: bytes) -> str | None:
    """Return the charset a page declares in a <meta> tag near its start, if any.

    Failing that, an XHTML page's XML declaration may name it.
    """
    match = _META_CHARSET.search(data[:4096]) or _XML_ENCODING.match(data)
    return match.group(1).decode("ascii") if match else None


def load(text: str, stem: str) -> LoadedDocument:
    """Turn an HTML page into a title and sections of paragraphs."""
    soup = _parse(text)
    title_tag = soup.select_one("head > title")  # not an SVG <title> in the body
    page_title = title_tag.get_text(" ", strip=True) if title_tag else ""
    _strip_noise(soup)
    root = next((r for sel in _CONTENT_ROOTS if (r := soup.select_one(sel)) is not None), soup)
    sections = _Walker().run(root)
    h1 = next((s.heading for s in sections if s.level == 1 and s.heading), "")
    return LoadedDocument(title=h1 or " ".join(page_title.split()) or stem, sections=sections)


def fragment_text(markup: str) -> str:
    """Return the visible text of an HTML fragment (e.g. raw HTML inside Markdown)."""
    soup = _parse(markup)
    _strip_noise(soup)
    return _block_text(soup)


def _parse(markup: str) -> BeautifulSoup:
    """Parse markup as HTML, XHTML included, as a browser reads a .html file.

    XHTML pages (DocBook's, such as the PostgreSQL manual) open with an XML declaration,
    which makes bs4 warn on each one that XML is parsed as HTML. Parsing them as HTML is
    deliberate: XHTML 1.0 is written to be read so, their text and headings come out as
    an HTML page's, and an XML parser would drop the entities that only the XHTML DTD
    defines (&nbsp;) or expand those an uploaded file declares. The declaration itself
    holds nothing but the encoding, which decoding has applied, so it is dropped.
    """
    return BeautifulSoup(_XML_DECLARATION.sub("", markup, count=1), "lxml")


def _strip_noise(soup: BeautifulSoup) -> None:
    """Remove everything that is not content, hidden elements included."""
    doomed = soup.find_all(_REMOVED_TAGS) + soup.select(_SPHINX_NOISE) + soup.find_all(_is_hidden)
    for tag in doomed:
        # An HTML5 <header> inside an article holds its title, not site chrome: keep it.
        if tag.name == "header" and tag.find_parent(["article", "main"]) is not None:
            continue
        if not tag.decomposed:
            tag.decompose()


def _is_hidden(tag: Tag) -> bool:
    """Whether the element is hidden from readers, so its text must never be indexed."""
    if tag.has_attr("hidden") or str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    return bool(_HIDDEN_STYLE.search(str(tag.get("style", ""))))


def _is_text(node: object) -> bool:
    """Whether a node is readable text (not a comment, doctype or CDATA)."""
    return isinstance(node, NavigableString) and not isinstance(node, PreformattedString)


class _Walker:
    """Walks the content root in document order, collecting sections and paragraphs."""

    def __init__(self) -> None:
        self.sections = [Section(heading="")]
        self.loose: list[str] = []

    def run(self, root: Tag) -> list[Section]:
        self._walk(root)
        self._flush()
        return [s for s in self.sections if s.heading or s.paragraphs]

    def _walk(self, node: Tag) -> None:
        for child in node.children:
            if _is_text(child):
                self.loose.append(str(child))
            elif not isinstance(child, Tag):
                continue
            elif child.name in _HEADINGS:
                self._flush()
                heading = _block_text(child).replace("\n", " ")
                self.sections.append(Section(heading=heading, level=int(child.name[1])))
            elif child.name in _BLOCKS:
                self._flush()
                self._add(_block_text(child))
            elif child.name in _INLINE:
                self._walk(child)
            else:  # a container such as div or section: its loose text is a paragraph of its own
                self._flush()
                self._walk(child)
                self._flush()

    def _flush(self) -> None:
        self._add(" ".join("".join(self.loose).split()))
        self.loose.clear()

    def _add(self, paragraph: str) -> None:
        if paragraph.strip():
            self.sections[-1].paragraphs.append(paragraph)


def _block_text(tag: Tag) -> str:
    """Text of a block: inline text collapsed, nested blocks on lines of their own."""
    if tag.name == "pre":
        return tag.get_text().strip("\n")
    if tag.name == "table":
        return _table_text(tag)
    lines: list[str] = []
    current: list[str] = []

    def flush() -> None:
        line = " ".join("".join(current).split())
        if line:
            lines.append(line)
        current.clear()

    def walk(node: Tag) -> None:
        for child in node.children:
            if _is_text(child):
                current.append(str(child))
            elif not isinstance(child, Tag):
                continue
            elif child.name in ("pre", "table"):
                flush()
                lines.append(_block_text(child))
            elif child.name in _INLINE:
                walk(child)
            else:  # br, p, div, nested lists...: a line break
                flush()
                walk(child)
                flush()

    walk(tag)
    flush()
    return "\n".join(lines)


def _table_text(table: Tag) -> str:
    """One line per row, cells joined with " | " (rows of nested tables are left to them)."""
    rows: list[str] = []
    caption = table.find("caption", recursive=False)
    if isinstance(caption, Tag):
        rows.append(_block_text(caption).replace("\n", " "))
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue
        cells = tr.find_all(["td", "th"], recursive=False)
        texts = [_block_text(cell).replace("\n", " ") for cell in cells]
        if any(texts):
            rows.append(" | ".join(texts))
    return "\n".join(rows)
