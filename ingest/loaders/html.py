"""HTML loader: the main content of a page as sections, without navigation or hidden text.

The page is parsed by libxml2's HTML parser (lxml) and walked as an element tree: text
inside an element is its `.text` and the text after it, up to its next sibling, its
`.tail`. Until 2026-12 the loader built a BeautifulSoup tree from the same parser's
events and found noise with CSS selectors; walking lxml's own tree gives the same
documents, equal on 18,670 real pages, 6-7 times as fast (docs/performance.md, "HTML
pages in C"): a large HTML manual spent a tenth of its ingest here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from lxml import etree
from lxml.etree import _Element as Element

from ingest.document import LoadedDocument, Section

# Never content: code, chrome around the page, widgets. Embedded media fallbacks are noise too.
_REMOVED_TAGS = frozenset(
    {
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
    }
)
# Sphinx chrome: permalink pilcrows, sidebar, prev/next bar and footer; DocBook's
# (the PostgreSQL manual's) "Prev | Up | Home | Next" bars, which differ on every page
# and so escape the boilerplate check. (tag, class) pairs: "a.headerlink" and so on.
_CHROME_CLASSES = frozenset(
    {
        ("a", "headerlink"),
        ("div", "sphinxsidebar"),
        ("div", "related"),
        ("div", "footer"),
        ("div", "navheader"),
        ("div", "navfooter"),
    }
)
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


def _classes(el: Element) -> list[str]:
    return (el.get("class") or "").split()


# Where the page's content is: the first element matching the first of these that any
# element matches (main, [role=main], article, div.body, body); else the whole page.
_CONTENT_ROOTS: tuple[Callable[[Element], bool], ...] = (
    lambda el: el.tag == "main",
    lambda el: el.get("role") == "main",
    lambda el: el.tag == "article",
    lambda el: el.tag == "div" and "body" in _classes(el),
    lambda el: el.tag == "body",
)


def declared_charset(data: bytes) -> str | None:
    """Return the charset a page declares in a <meta> tag near its start, if any.

    Failing that, an XHTML page's XML declaration may name it.
    """
    match = _META_CHARSET.search(data[:4096]) or _XML_ENCODING.match(data)
    return match.group(1).decode("ascii") if match else None


def load(text: str, stem: str) -> LoadedDocument:
    """Turn an HTML page into a title and sections of paragraphs."""
    root = _parse(text)
    if root is None:  # nothing but whitespace or comments
        return LoadedDocument(title=stem, sections=[])
    # The head's <title>, not an SVG <title> in the body.
    title = next((t for t in root.iter("title") if _parent_tag(t) == "head"), None)
    page_title = " ".join("".join(title.itertext()).split()) if title is not None else ""
    _strip_noise(root)
    content = next(
        (el for match in _CONTENT_ROOTS for el in _elements(root) if match(el)),
        root,
    )
    sections = _Walker().run(content)
    h1 = next((s.heading for s in sections if s.level == 1 and s.heading), "")
    return LoadedDocument(title=h1 or page_title or stem, sections=sections)


def fragment_text(markup: str) -> str:
    """Return the visible text of an HTML fragment (e.g. raw HTML inside Markdown)."""
    root = _parse(markup)
    if root is None:
        return ""
    _strip_noise(root)
    return _block_text(root)


def _parse(markup: str) -> Element | None:
    """Parse markup as HTML, XHTML included, as a browser reads a .html file; None when
    it holds neither an element nor text.

    XHTML pages (DocBook's, such as the PostgreSQL manual) open with an XML declaration.
    Parsing them as HTML is deliberate: XHTML 1.0 is written to be read so, their text
    and headings come out as an HTML page's, and an XML parser would drop the entities
    that only the XHTML DTD defines (&nbsp;) or expand those an uploaded file declares.
    The declaration itself holds nothing but the encoding, which decoding has applied,
    so it is dropped (libxml2 also refuses a declared encoding in text already decoded).

    Fed whole to the parser, as BeautifulSoup's lxml builder fed it: the same tree.
    `huge_tree` lifts libxml2's limit of 255 levels of nesting, past which it drops the
    page (a browser reads it; the tree walks below stop where Python's recursion does,
    and load_bytes reports that).
    """
    parser = etree.HTMLParser(huge_tree=True)
    parser.feed(_XML_DECLARATION.sub("", markup, count=1))
    root = parser.close()
    return root if isinstance(root, Element) else None


def _elements(root: Element) -> Iterator[Element]:
    """The elements under and including `root`, in document order (no comments)."""
    elements: Iterator[Element] = root.iter(etree.Element)
    return elements


def _parent_tag(el: Element) -> str | None:
    parent = el.getparent()
    return None if parent is None else str(parent.tag)


def _strip_noise(root: Element) -> None:
    """Remove everything that is not content, hidden elements included. An element goes
    with everything inside it but not with the text after it (its tail). One pass over
    the tree, without recursion: a page may nest thousands of levels deep."""
    if _is_noise(root):  # a hidden <html>: nothing is content
        root.text = None
        root[:] = []
        return
    todo: list[tuple[Element, bool]] = [(root, False)]  # (element, inside an article)
    while todo:
        parent, in_article = todo.pop()
        in_article = in_article or parent.tag in ("article", "main")
        # The text before the next kept child: the parent's own text, then the tails of
        # the children dropped since (joined once: a page may hold thousands in a row).
        kept: Element | None = None
        texts = [parent.text or ""]
        dropped = False
        for child in list(parent):
            # An HTML5 <header> inside an article holds its title, not site chrome: keep it.
            if (
                isinstance(child.tag, str)  # not a comment or processing instruction
                and _is_noise(child)
                and not (child.tag == "header" and in_article)
            ):
                texts.append(child.tail or "")
                parent.remove(child)
                dropped = True
                continue
            if dropped:
                _set_text_before(parent, kept, texts)
            kept, texts, dropped = child, [child.tail or ""], False
            if isinstance(child.tag, str):
                todo.append((child, in_article))
        if dropped:
            _set_text_before(parent, kept, texts)


def _set_text_before(parent: Element, kept: Element | None, texts: list[str]) -> None:
    """The text after `kept` (the parent's own text when None), up to the next child."""
    text = "".join(texts) or None
    if kept is None:
        parent.text = text
    else:
        kept.tail = text


def _is_noise(el: Element) -> bool:
    tag = el.tag
    if tag in _REMOVED_TAGS:
        return True
    if tag in ("a", "div") and any((tag, c) in _CHROME_CLASSES for c in _classes(el)):
        return True
    return _is_hidden(el)


def _is_hidden(el: Element) -> bool:
    """Whether the element is hidden from readers, so its text must never be indexed."""
    if el.get("hidden") is not None or (el.get("aria-hidden") or "").lower() == "true":
        return True
    return bool(_HIDDEN_STYLE.search(el.get("style") or ""))


class _Walker:
    """Walks the content root in document order, collecting sections and paragraphs."""

    def __init__(self) -> None:
        self.sections = [Section(heading="")]
        self.loose: list[str] = []

    def run(self, root: Element) -> list[Section]:
        self._walk(root)
        self._flush()
        return [s for s in self.sections if s.heading or s.paragraphs]

    def _walk(self, node: Element) -> None:
        if node.text:
            self.loose.append(node.text)
        for child in node:
            name = child.tag
            if not isinstance(name, str):  # a comment or processing instruction
                pass
            elif name in _HEADINGS:
                self._flush()
                heading = _block_text(child).replace("\n", " ")
                self.sections.append(Section(heading=heading, level=int(name[1])))
            elif name in _BLOCKS:
                self._flush()
                self._add(_block_text(child))
            elif name in _INLINE:
                self._walk(child)
            else:  # a container such as div or section: its loose text is a paragraph of its own
                self._flush()
                self._walk(child)
                self._flush()
            if child.tail:
                self.loose.append(child.tail)

    def _flush(self) -> None:
        self._add(" ".join("".join(self.loose).split()))
        self.loose.clear()

    def _add(self, paragraph: str) -> None:
        if paragraph.strip():
            self.sections[-1].paragraphs.append(paragraph)


def _block_text(tag: Element) -> str:
    """Text of a block: inline text collapsed, nested blocks on lines of their own."""
    if tag.tag == "pre":
        return "".join(tag.itertext()).strip("\n")
    if tag.tag == "table":
        return _table_text(tag)
    lines: list[str] = []
    current: list[str] = []

    def flush() -> None:
        line = " ".join("".join(current).split())
        if line:
            lines.append(line)
        current.clear()

    def walk(node: Element) -> None:
        if node.text:
            current.append(node.text)
        for child in node:
            name = child.tag
            if not isinstance(name, str):  # a comment or processing instruction
                pass
            elif name in ("pre", "table"):
                flush()
                lines.append(_block_text(child))
            elif name in _INLINE:
                walk(child)
            else:  # br, p, div, nested lists...: a line break
                flush()
                walk(child)
                flush()
            if child.tail:
                current.append(child.tail)

    walk(tag)
    flush()
    return "\n".join(lines)


def _table_text(table: Element) -> str:
    """One line per row, cells joined with " | " (rows of nested tables are left to them)."""
    rows: list[str] = []
    caption = next((c for c in table if c.tag == "caption"), None)
    if caption is not None:
        rows.append(_block_text(caption).replace("\n", " "))
    for tr in table.iter("tr"):
        if next(tr.iterancestors("table"), None) is not table:
            continue
        cells = [c for c in tr if c.tag in ("td", "th")]
        texts = [_block_text(cell).replace("\n", " ") for cell in cells]
        if any(texts):
            rows.append(" | ".join(texts))
    return "\n".join(rows)
