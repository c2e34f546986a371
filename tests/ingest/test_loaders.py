"""The per-format loaders, on the fixture corpus, on small inline documents and on real pages."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from ingest.document import LoadedDocument, LoadError
from ingest.loaders import SUPPORTED_SUFFIXES, load_bytes, load_file
from tests.fixtures.make_pdf import MANUAL_PAGES, build_pdf
from tests.needs import need_path

CORPUS = Path(__file__).parents[1] / "fixtures" / "corpus"
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")
MANUAL = "the Python 3.11 HTML manual (apt-get install python3.11-doc)"
POSTGRES_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
XHTML_PAGE = Path(__file__).parent / "fixtures" / "docbook.html"


def headings(doc: LoadedDocument) -> list[tuple[int, str]]:
    """(level, heading) of every section, in order."""
    return [(s.level, s.heading) for s in doc.sections]


def section_text(doc: LoadedDocument, heading: str) -> str:
    """All paragraphs of the section with that heading."""
    matches = [s for s in doc.sections if s.heading == heading]
    assert matches, f"no section {heading!r} in {headings(doc)}"
    return "\n\n".join(matches[0].paragraphs)


def test_supported_suffixes() -> None:
    assert SUPPORTED_SUFFIXES == {
        ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
        ".rst": "rst", ".rest": "rst", ".txt": "text", ".text": "text", ".pdf": "pdf",
        ".docx": "docx", ".epub": "epub", ".odt": "odt", ".pptx": "pptx", ".xlsx": "xlsx",
    }  # fmt: skip


# --- Markdown ---------------------------------------------------------------------------


def test_markdown_guide() -> None:
    doc = load_file(CORPUS / "guide.md")
    assert doc.title == "Getting started"
    assert headings(doc) == [
        (1, "Acme Widget Server guide"),
        (2, "Installation"),
        (2, "Configuration"),
        (2, "Starting the server"),
        (2, "Next steps"),
    ]
    assert "listens on port 7421 by default" in section_text(doc, "Configuration")
    assert "/etc/widget/widget.toml" in section_text(doc, "Configuration")
    starting = section_text(doc, "Starting the server")
    assert "The widgetctl start command starts the server" in starting
    assert doc.warnings == []


def test_markdown_guide_cleanup() -> None:
    doc = load_file(CORPUS / "guide.md")
    text = doc.text
    assert "description:" not in text  # front matter
    assert "TODO" not in text  # HTML comment
    assert "See the download page for other platforms." in text  # link markup gone, text kept
    assert "example.com" not in text
    assert "Diagram of the widget server and its clients" in text  # image alt text
    # A fenced block is one paragraph, verbatim, and its "# comment" line is not a heading.
    assert "# the package ships the server and its control tool\nwidgetctl --version" in (
        doc.sections[1].paragraphs
    )
    # The whole list is one paragraph; the table is one row per line.
    config = doc.sections[2].paragraphs
    assert config[1].splitlines()[1] == "- port: the server listens on port 7421 by default."
    assert config[2] == "Setting | Default\nport | 7421\nlisten_address | 0.0.0.0"


def test_markdown_setext_headings_and_fences() -> None:
    source = (
        "Overview\n========\n\nFirst paragraph of the overview.\n\n"
        "Details\n-------\n\n```python\n# not a heading\nx = 1\n\n\ny = 2\n```\n\n"
        "#### Deep heading\n\nText under *the* deep heading.\n"
    )
    doc = load_bytes(source.encode(), "setext.md")
    assert headings(doc) == [(1, "Overview"), (2, "Details"), (4, "Deep heading")]
    assert doc.title == "Overview"  # the first H1, as there is no front matter
    assert doc.sections[1].paragraphs == ["# not a heading\nx = 1\n\n\ny = 2"]
    assert doc.sections[2].paragraphs == ["Text under the deep heading."]


def test_markdown_inline_html_and_lists() -> None:
    source = (
        "Press <kbd>Ctrl</kbd>+<kbd>C</kbd> to stop <!-- INLINE-COMMENT --> the server.\n\n"
        "1. First step\n2. Second step\n   - nested detail\n\nAfter the list.\n"
    )
    paragraphs = load_bytes(source.encode(), "inline.md").sections[0].paragraphs
    assert " ".join(paragraphs[0].split()) == "Press Ctrl+C to stop the server."
    assert paragraphs[1] == "1. First step\n2. Second step\n   - nested detail"
    assert paragraphs[2] == "After the list."


def test_markdown_title_fallbacks_and_front_matter_quoting() -> None:
    source = b"---\ntitle: 'It''s: quoted'\n---\n\n# Heading\n\nBody text that is long enough.\n"
    quoted = load_bytes(source, "q.md")
    assert quoted.title == "It's: quoted"
    no_h1 = load_bytes(b"## Only a subsection\n\nBody text that is long enough.\n", "my-notes.md")
    assert no_h1.title == "my-notes"
    # A leading thematic break followed by ordinary text is not front matter.
    rule = load_bytes(b"---\nJust text, not YAML.\n---\n\nThe body text of this file.\n", "r.md")
    assert headings(rule) == [(2, "Just text, not YAML.")]  # a setext heading after a rule
    assert rule.title == "r"


# --- HTML -------------------------------------------------------------------------------


def test_html_reference_page() -> None:
    doc = load_file(CORPUS / "reference" / "api.html")
    assert doc.title == "REST API reference"
    assert headings(doc) == [(1, "REST API reference"), (2, "Widgets"), (2, "Rate limits")]
    widgets = section_text(doc, "Widgets")
    assert "The REST endpoint POST /v2/widgets creates a widget." in widgets
    assert "POST | /v2/widgets | Create a widget" in widgets
    # pre keeps its line breaks and indentation
    assert "\\\n     -H 'Content-Type: application/json'" in widgets
    limits = doc.sections[2].paragraphs
    # Loose text directly in a div is kept (without its aria-hidden span) as one paragraph.
    assert limits[0] == (
        "The rate limit is 120 requests per minute per API key. "
        "Requests above the limit receive HTTP status 429."
    )
    # A p inside an li is part of the li's paragraph.
    assert limits[1] == "The Retry-After header says when to try again."


@pytest.mark.parametrize(
    "marker",
    [
        "HIDDEN-CANARY-TEXT",
        "STYLE-HIDDEN-CANARY",
        "ARIA-HIDDEN-CANARY",
        "NAVBAR-PRICING-LINK",
        "SIDEBAR-RATE-LIMITS-LINK",
        "On this page",
        "SCRIPT-BLOCK-TEXT",
        "STYLE-BLOCK-TEXT",
        "FOOTER-COPYRIGHT",
        "¶",
    ],
)
def test_html_reference_page_drops_noise(marker: str) -> None:
    doc = load_file(CORPUS / "reference" / "api.html")
    assert marker not in doc.text
    assert all(marker not in s.heading for s in doc.sections)


def test_html_sphinx_noise_and_content_root() -> None:
    page = """<html><head><title>Widgets &#8212; Acme 1.0 documentation</title></head><body>
      <div class="related"><h3>Navigation</h3><ul><li>RELATED-BAR</li></ul></div>
      <div class="document"><div class="body">
        <section><h1>Widgets<a class="headerlink" href="#w">¶</a></h1>
        <p>Widgets are the unit of storage in the server.</p>
        <dl><dt>color</dt><dd><p>The widget color.</p><p>Defaults to blue.</p></dd></dl>
        </section>
      </div></div>
      <div class="sphinxsidebar"><h3>Quick search</h3>SIDEBAR-TEXT</div>
      <div class="footer">FOOTER-TEXT</div>
    </body></html>"""
    doc = load_bytes(page.encode(), "widgets.html")
    assert doc.title == "Widgets"
    assert headings(doc) == [(1, "Widgets")]
    assert doc.sections[0].paragraphs == [
        "Widgets are the unit of storage in the server.",
        "color",
        "The widget color.\nDefaults to blue.",
    ]
    for noise in ("¶", "RELATED-BAR", "Navigation", "Quick search", "SIDEBAR-TEXT", "FOOTER-TEXT"):
        assert noise not in doc.text


def test_html_block_structure() -> None:
    page = (
        "<body><div>Loose text before.<div>Inner loose text.</div>Loose text after.</div>"
        "<ul><li><p>Step one.</p><p>More about step one.</p></li><li>Step two.</li></ul>"
        "<blockquote><p>Quoted one.</p><p>Quoted two.</p></blockquote></body>"
    )
    doc = load_bytes(page.encode(), "blocks.html")
    assert doc.sections[0].paragraphs == [
        "Loose text before.",
        "Inner loose text.",
        "Loose text after.",
        "Step one.\nMore about step one.",
        "Step two.",
        "Quoted one.\nQuoted two.",
    ]


@pytest.mark.parametrize("root", ["main", "div role='main'", "article", "div class='body'"])
def test_html_content_root(root: str) -> None:
    tag = root.split()[0]
    content = "<p>The text inside the content root.</p>"
    page = f"<body><div>OUTSIDE-THE-ROOT</div><{root}>{content}</{tag}></body>"
    doc = load_bytes(page.encode(), "root.html")
    assert doc.text == "The text inside the content root."


def test_html_title_fallbacks_and_article_header() -> None:
    no_h1 = b"<title>Page   title</title><body><p>Enough body text on this page.</p>"
    assert load_bytes(no_h1, "x.html").title == "Page title"
    bare = b"<p>Enough body text here, no title at all.</p>"
    assert load_bytes(bare, "bare-page.htm").title == "bare-page"
    article = (
        b"<body><header>SITE-BANNER</header><article><header><h1>Article title</h1></header>"
        b"<p>The body text of the article.</p></article></body>"
    )
    doc = load_bytes(article, "a.html")
    assert doc.title == "Article title"
    assert "SITE-BANNER" not in doc.text


def test_html_declared_charset() -> None:
    page = '<meta charset="iso-8859-1"><h1>Caf\xe9</h1><p>Cr\xe8me br\xfbl\xe9e is served cold.</p>'
    doc = load_bytes(page.encode("latin-1"), "menu.html")
    assert doc.title == "Café"
    assert doc.sections[0].paragraphs == ["Crème brûlée is served cold."]
    # Without a declaration the same bytes are not UTF-8.
    with pytest.raises(LoadError, match=r"^not valid UTF-8 text: invalid byte 0xe9"):
        load_bytes(page.encode("latin-1").replace(b"iso-8859-1", b"nonsense-x"), "menu.html")


def load_quietly(data: bytes, name: str) -> LoadedDocument:
    """Load a file, failing on any warning, even one a filter would show only once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        doc = load_bytes(data, name)
    assert [str(w.message) for w in caught] == []
    return doc


def test_xhtml_page_is_read_like_html_without_warnings() -> None:
    """A DocBook XHTML page (an XML declaration first) loads silently, as its HTML twin."""
    data = XHTML_PAGE.read_bytes()
    assert data.startswith(b"<?xml")
    doc = load_quietly(data, "docbook.html")
    prolog = re.compile(rb"\A<\?xml[^>]*\?>\s*<!DOCTYPE[^>]*>(<html) xmlns=\"[^\"]*\"")
    html_twin = prolog.sub(rb"<!DOCTYPE html>\1", data)
    assert html_twin.startswith(b"<!DOCTYPE html><html><head>")
    assert doc == load_quietly(html_twin, "docbook.html")
    assert doc.title == "3.2. Replicating Widgets"
    assert headings(doc) == [(1, "3.2. Replicating Widgets"), (2, "3.2.1. Replication Lag")]
    intro = section_text(doc, "3.2. Replicating Widgets")
    assert "A replica keeps a copy of every widget of its primary" in intro
    assert "widgetctl replica add --primary=store-1 --name=store-2" in intro
    lag = section_text(doc, "3.2.1. Replication Lag")
    assert "more than 30 seconds raises the ReplicaBehind alert" in lag
    assert "streaming | up to date & following" in lag
    assert "xml version" not in doc.text


def test_xhtml_encoding_from_its_xml_declaration() -> None:
    """Without a <meta> charset, the XML declaration's encoding decodes the page."""
    page = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Caf\xe9</h1>'
        "<p>Cr\xe8me br\xfbl\xe9e is served cold.</p></body></html>"
    )
    doc = load_quietly(page.encode("latin-1"), "menu.html")
    assert (doc.title, doc.text) == ("Café", "Crème brûlée is served cold.")


# --- reStructuredText -------------------------------------------------------------------


def test_rst_backup_page() -> None:
    doc = load_file(CORPUS / "admin" / "backup.rst")
    assert doc.title == "Backup and restore"
    assert headings(doc) == [(1, "Backup and restore"), (2, "Schedule"), (2, "Restoring")]
    schedule = section_text(doc, "Schedule")
    assert "Backups run nightly at 02:30 with widgetctl backup --full." in schedule
    assert "Backups are kept for 14 days" in schedule
    assert "   $ widgetctl backup --full" not in schedule  # literal block dedented by docutils
    assert "$ widgetctl backup --full\nbackup written to" in schedule  # ...but kept verbatim
    restoring = doc.sections[2].paragraphs
    assert restoring[0].startswith("1. Stop the server.\n2. Unpack")
    # An unknown Sphinx directive's text survives as plain text.
    assert restoring[1] == (
        "versionadded 3.1\nRestoring from a backup no longer requires a full reindex."
    )


def test_rst_unknown_role_and_error_reports() -> None:
    doc = load_file(CORPUS / "admin" / "backup.rst")
    assert "See restore-procedure before you rely on a backup." in doc.text
    for noise in (":ref:", "Unknown interpreted text role", "ERROR/3", "COMMENT-CANARY"):
        assert noise not in doc.text


def test_rst_is_silent_and_safe(capfd: pytest.CaptureFixture[str]) -> None:
    source = """
Intro with :py:func:`~pkg.mod.func` and :doc:`The Guide <guide>`, and *bad markup.

.. raw:: html

   <b>RAW-HTML-CANARY</b>

.. include:: /etc/hostname

.. toctree::

   TOCTREE-ENTRY

.. |product| replace:: SUBSTITUTED-PRODUCT

Title
=====

Uses |product| here.

.. no-such-directive:: argument
   :option: OPTION-CANARY

   Body of the unknown directive.

+-----+-----+
| A   | B   |
+=====+=====+
| 1   | 2   |
+-----+-----+
"""
    doc = load_bytes(source.encode(), "safe.rst")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert headings(doc) == [(0, ""), (1, "Title")]
    assert doc.title == "Title"
    assert doc.sections[0].paragraphs == ["Intro with pkg.mod.func and The Guide, and *bad markup."]
    assert doc.sections[1].paragraphs == [
        "Uses SUBSTITUTED-PRODUCT here.",
        "no-such-directive argument\nBody of the unknown directive.",
        "A | B\n1 | 2",
    ]
    for canary in ("RAW-HTML-CANARY", "TOCTREE-ENTRY", "OPTION-CANARY", "localhost"):
        assert canary not in doc.text


# --- plain text -------------------------------------------------------------------------


def test_text_release_notes() -> None:
    doc = load_file(CORPUS / "notes.txt")
    assert doc.title == "notes"
    assert headings(doc) == [(0, "")]
    paragraphs = doc.sections[0].paragraphs
    assert "Version 3.2 added TLS 1.3 support for all client connections." in paragraphs[2]
    assert 'The codename of version 3.2 is "Blue Heron".' in paragraphs
    assert len(paragraphs) == 6


def test_text_title_from_file_name_and_crlf() -> None:
    data = b"First paragraph line.\r\nSame paragraph.\r\n\r\nSecond one.\r\n"
    doc = load_bytes(data, "release_notes-v3.txt")
    assert doc.title == "release notes v3"
    assert doc.sections[0].paragraphs == ["First paragraph line.\nSame paragraph.", "Second one."]


# --- PDF --------------------------------------------------------------------------------


def test_pdf_manual() -> None:
    doc = load_file(CORPUS / "manual.pdf")
    assert doc.title == "Acme Widget Server Manual"  # from /Title
    assert headings(doc) == [(0, "Page 1"), (0, "Page 2")]
    assert "Error code E42 means the license has expired." in section_text(doc, "Page 1")
    assert "Logs are written to /var/log/widget/server.log." in section_text(doc, "Page 2")
    assert "server.log" not in section_text(doc, "Page 1")
    assert doc.warnings == []


def test_pdf_title_from_first_line_and_empty_page_warning() -> None:
    data = build_pdf([MANUAL_PAGES[0], []])  # no /Title, and a page without text
    doc = load_bytes(data, "scan-2024.pdf")
    assert doc.title == "Troubleshooting"
    assert doc.warnings == ["1 of 2 pages had no extractable text"]
    assert headings(doc) == [(0, "Page 1"), (0, "Page 2")]


def test_pdf_without_text() -> None:
    with pytest.raises(LoadError, match=r"^no extractable text \(scanned or image-only PDF\?\)$"):
        load_bytes(build_pdf([[], []]), "scan.pdf")


def _encrypted(user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(CORPUS / "manual.pdf"))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_encrypted() -> None:
    with pytest.raises(LoadError, match=r"^encrypted PDF$"):
        load_bytes(_encrypted("secret"), "locked.pdf")
    # Only an owner password (printing/copying restrictions): readable with the empty one.
    doc = load_bytes(_encrypted(""), "restricted.pdf")
    assert "Error code E42" in doc.text


def test_pdf_truncated() -> None:
    data = (CORPUS / "manual.pdf").read_bytes()
    with pytest.raises(LoadError, match=r"^corrupt or unreadable PDF: \S"):
        load_bytes(data[: len(data) // 2], "manual.pdf")


# --- common checks and bad files --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bad/empty.md", r"^empty file$"),
        ("bad/latin1.txt", r"^not valid UTF-8 text: invalid byte 0xe9 at offset 17$"),
        ("bad/corrupt.pdf", r"^corrupt or unreadable PDF: \S"),
        ("bad/binary.md", r"^binary content, not text \(NUL bytes found\)$"),
        ("image.png", r"^unsupported file type \.png$"),
    ],
)
def test_bad_files(name: str, reason: str) -> None:
    with pytest.raises(LoadError, match=reason):
        load_file(CORPUS / name)


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b" \n\t\r\n ", "blank.md", r"^empty file$"),
        (b"\xef\xbb\xbf  \n", "bom-only.txt", r"^empty file$"),
        (b"x" * 50, "README", r"^unsupported file type \(no suffix\)$"),
        (b"Hello, world.", "short.txt", r"^no text left after cleaning$"),
        (
            b"<script>var lots = 'of code but no text';</script><p>Hi</p>",
            "s.html",
            r"^no text left after cleaning$",
        ),
        (
            b"<p>Hello\x00world, quite a long page indeed.</p>",
            "nul.html",
            r"^binary content, not text \(NUL bytes found\)$",
        ),
        ("Hello in UTF-16".encode("utf-16"), "wide.txt", r"^not valid UTF-8 text: UTF-16"),
        (b"   \n", "blank.pdf", r"^empty file$"),
    ],
)
def test_common_checks(data: bytes, name: str, reason: str) -> None:
    with pytest.raises(LoadError, match=reason):
        load_bytes(data, name)


def test_html_text_around_removed_elements_stays_in_place() -> None:
    # lxml keeps the text after an element as that element's tail: removing a hidden span
    # or a script must leave it where it was, also after a comment and after a run of
    # removed elements (joined once: a page may hold thousands of them in a row).
    page = (
        "<body><p>one <span hidden>HIDDEN</span>two<!-- note --> three"
        "<script>SCRIPT</script><span style='display:none'>HIDDEN</span> four</p>"
        "<div><nav>NAV</nav>Lead text.<p>Para.</p>Tail text.</div>"
        "<p>" + "<span hidden>X</span>y" * 3000 + "</p></body>"
    )
    doc = load_bytes(page.encode(), "removed.html")
    assert doc.sections[0].paragraphs == [
        "one two three four",
        "Lead text.",
        "Para.",
        "Tail text.",
        "y" * 3000,
    ]


def test_html_nested_deeper_than_the_parsers_default_limit() -> None:
    # libxml2 drops a page nested over 255 levels unless told otherwise; the loader
    # reads it whole, as a browser does, up to the depth its tree walk can follow.
    page = (
        "<div>" * 600 + "<p>Text at the bottom.</p>" + "</div>" * 600 + "<p>After the nesting.</p>"
    )
    doc = load_bytes(page.encode(), "deep.html")
    assert doc.sections[0].paragraphs == ["Text at the bottom.", "After the nesting."]


def test_absurd_nesting_is_a_load_error() -> None:
    page = "<div>" * 5000 + "<p>Text at the bottom of the nesting.</p>" + "</div>" * 5000
    with pytest.raises(LoadError, match=r"^too deeply nested to read"):
        load_bytes(page.encode(), "deep.html")


def test_utf8_bom_and_upper_case_suffix() -> None:
    doc = load_bytes("\ufeff# Überschrift\n\nGenügend Text für den Test.\n".encode(), "Liesmich.MD")
    assert doc.title == "Überschrift"
    assert not doc.text.startswith("\ufeff")


def test_load_file_and_load_bytes_agree() -> None:
    path = CORPUS / "guide.md"
    assert load_file(path) == load_bytes(path.read_bytes(), "guide.md")


def test_missing_file() -> None:
    with pytest.raises(LoadError, match=r"^cannot read file: "):
        load_file(CORPUS / "no-such-file.md")


# --- a real manual page -----------------------------------------------------------------


def test_python_manual_json_page() -> None:
    doc = load_file(need_path(PYTHON_DOCS / "library" / "json.html", MANUAL))
    assert doc.title == "json — JSON encoder and decoder"
    found = headings(doc)
    assert found[0] == (1, "json — JSON encoder and decoder")
    for expected in [(2, "Basic Usage"), (2, "Encoders and Decoders"), (3, "Character Encodings")]:
        assert expected in found
    basic = section_text(doc, "Basic Usage")
    assert "Serialize obj as a JSON formatted stream to fp" in basic
    assert "¶" not in doc.text
    assert all("¶" not in h for _, h in found)
    for chrome in (
        "Table of Contents",
        "Previous topic",
        "Quick search",
        "Report a Bug",
        "Show Source",
        "Python Software Foundation",
    ):
        assert chrome not in doc.text
    # Code examples keep their prompts and line breaks.
    assert ">>> import json\n>>> json.dumps(['foo', {'bar': ('baz', None, 1.0, 2)}])" in doc.text


@pytest.mark.skipif(
    not (POSTGRES_DOCS / "tutorial-join.html").is_file(),
    reason="PostgreSQL 15 HTML manual not installed (apt-get install postgresql-doc-15)",
)
def test_postgresql_manual_xhtml_page() -> None:
    doc = load_quietly((POSTGRES_DOCS / "tutorial-join.html").read_bytes(), "tutorial-join.html")
    assert doc.title == "2.6. Joins Between Tables"
    assert (2, "2.6. Joins Between Tables") in headings(doc)
    assert "SELECT * FROM weather JOIN cities ON city = name;" in doc.text
    # The navigation bars above and below every page are not content.
    assert "Prev" not in doc.text.split()
    assert "Next" not in doc.text.split()


def test_docbook_navigation_bars_are_not_content() -> None:
    page = (
        b'<html><body><div class="navheader"><table><tr><td><a href="a.html">Prev</a></td>'
        b"<td>Up</td><th>Chapter 2. The SQL Language</th><td>Home</td><td>Next</td></tr>"
        b'</table></div><div class="sect1"><h2 class="title">2.6. Joins</h2>'
        b"<p>Queries can access multiple tables at once.</p></div>"
        b'<div class="navfooter"><table><tr><td>Prev</td><td>Up</td><td>Next</td></tr>'
        b"<tr><td>2.5. Querying a Table</td><td>Home</td><td>2.7. Aggregate Functions</td>"
        b"</tr></table></div></body></html>"
    )
    doc = load_quietly(page, "joins.html")
    assert "Queries can access multiple tables at once." in doc.text
    assert "Prev" not in doc.text
    assert "Aggregate Functions" not in doc.text
