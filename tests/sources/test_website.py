"""A website source against a real HTTP server on loopback: robots.txt, a sitemap,
ETags, redirects, a canonical URL and an endless calendar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from app.settings import Settings
from app.store.db import open_database
from app.store.sources import Source
from ingest.sources.registry import Sources
from tests.conftest import Models, make_settings
from tests.sources.conftest import documents, syncing
from tests.sources.servers import Site, website


def page(title: str, text: str, *links: str, canonical: str | None = None) -> str:
    anchors = "".join(f'<a href="{link}">{link}</a> ' for link in links)
    head = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    return (
        f"<html><head><title>{title}</title>{head}</head><body><h1>{title}</h1>"
        f"<p>{text}</p><p>{anchors}</p></body></html>"
    )


@pytest.fixture
def site() -> Iterator[Site]:
    pages = {
        "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /docs/private/\n"),
        "/docs/index.html": (
            "text/html",
            page(
                "Home",
                "Welcome to the widget manual, which explains how widgets are set up.",
                "/docs/a.html",
                "b.html",
                "/docs/private/secret.html",
                "/docs/old.html",
                "/docs/away.html",
                "/other/out.html",
                "/docs/calendar?m=0",
                "/docs/a.html?print=1",
            ).encode(),
        ),
        "/docs/a.html": (
            "text/html",
            page(
                "Alpha", "Alpha widgets are tuned with the alpha dial on the rear panel."
            ).encode(),
        ),
        "/docs/a.html?print=1": (
            "text/html",
            page(
                "Alpha",
                "Alpha widgets are tuned with the alpha dial on the rear panel.",
                canonical="/docs/a.html",
            ).encode(),
        ),
        "/docs/b.html": (
            "text/html",
            page("Beta", "Beta widgets need a firmware update before their first use.").encode(),
        ),
        "/docs/c.html": (
            "text/html",
            page("Gamma", "Gamma widgets are listed only in the sitemap of this site.").encode(),
        ),
        "/docs/private/secret.html": ("text/html", page("Secret", "Never crawl me.").encode()),
        "/other/out.html": ("text/html", page("Out", "Outside the path prefix.").encode()),
    }
    served = Site(pages, redirects={"/docs/old.html": "/docs/b.html"})
    with website(served) as running:
        running.redirects["/docs/away.html"] = running.url.replace("127.0.0.1", "localhost") + "/x"
        running.put(
            "/sitemap.xml",
            f"<urlset><url><loc>{running.url}/docs/c.html</loc></url></urlset>",
            "application/xml",
        )
        yield running


def add(settings: Settings, site: Site, **config: Any) -> None:
    db = open_database(settings)
    try:
        Sources(db, settings.data_dir).add(
            "manual",
            "manual",
            "website",
            {
                "start_url": f"{site.url}/docs/index.html",
                "sitemap": f"{site.url}/sitemap.xml",
                "max_pages": 12,
                "max_depth": 2,
                "request_interval_s": 0,
                **config,
            },
        )
    finally:
        db.close()


def test_crawl_obeys_robots_scope_limits_and_cites_urls(
    settings: Settings, models: Models, site: Site, sync: Callable[..., Any]
) -> None:
    add(settings, site)
    result = sync("manual")
    assert result.status in ("completed", "partial"), result.error
    docs = documents(settings, models)
    base = site.url + "/docs/"
    for name in ("index.html", "a.html", "b.html", "c.html"):
        assert base + name in docs
    assert not any("private" in d or "other" in d or "old" in d or "print" in d for d in docs)
    assert site.statuses("/docs/private/secret.html") == []  # robots.txt: never asked
    assert site.statuses("/other/out.html") == []
    calendar = [p for p, _ in site.requests if p.startswith("/docs/calendar")]
    assert 0 < len(calendar) <= 3  # the trap: stopped by max_depth
    reasons = [f.reason for f in result.summary.findings if f.check == "source"]
    assert any("robots.txt" in r for r in reasons)
    assert any("max_depth" in r for r in reasons)
    assert any("another host refused" in r for r in reasons), (reasons, site.requests)
    assert not any(p == "/x" for p, _ in site.requests)


def test_unchanged_site_costs_304s_and_changes_and_removals_follow(
    settings: Settings, models: Models, site: Site, sync: Callable[..., Any]
) -> None:
    add(settings, site, max_depth=1)
    assert sync("manual").status in ("completed", "partial")
    site.requests.clear()
    again = sync("manual")
    assert (again.summary.new, again.summary.changed, again.summary.deleted) == (0, 0, 0)
    assert site.statuses("/docs/a.html") == [304]
    assert site.statuses("/docs/index.html") == [304]

    site.put("/docs/c.html", page("Gamma", "Gamma widgets were renamed delta widgets in May."))
    site.drop("/docs/a.html")
    site.drop("/docs/a.html?print=1")
    changed = sync("manual")
    summary = changed.summary
    assert (summary.changed, summary.deleted) == (1, 1), summary
    docs = documents(settings, models)
    assert site.url + "/docs/a.html" not in docs
    assert site.url + "/docs/c.html" in docs


def test_page_limit_never_deletes_what_was_not_reached(
    settings: Settings, models: Models, site: Site, sync: Callable[..., Any]
) -> None:
    add(settings, site)
    sync("manual")
    before = documents(settings, models)
    db = open_database(settings)
    with db.session() as session:  # the operator lowers the limit: a crawl cut short
        row = session.scalars(select(Source)).one()
        row.config = {**row.config, "max_pages": 2}
    db.close()
    cut = sync("manual")
    assert any("max_pages" in f.reason for f in cut.summary.findings)
    assert cut.summary.deleted == 0
    assert documents(settings, models) == before


def test_loopback_refused_unless_allowed(
    tmp_path: Any, models: Models, site: Site, sync: Callable[..., Any]
) -> None:
    guarded = make_settings(tmp_path / "guarded")  # allow_private_addresses off
    add(guarded, site)
    with syncing(guarded, models) as syncer:
        result = syncer.sync("manual")
    assert result.status == "failed"
    assert "127.0.0.1" in (result.error or "")
    assert "inside the network" in (result.error or "")
    assert site.requests == []  # not one request left
