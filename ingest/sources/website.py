"""A website: crawled from a start URL (and its sitemap) within one host and path prefix,
obeying robots.txt, bounded in pages, depth, size and rate; mirrored to the source's
folder, one file per page, which the pipeline ingests with the page URL as citation.

Each page's ETag and Last-Modified are kept in the mirror's manifest and sent back, so an
unchanged page costs a 304 and no download. A page answered 404 or 410 is removed; one
not reached is removed only when the crawl reached everything it could (not cut short by
a limit or an error), so a crawl stopped at max_pages never deletes the rest. A page
naming another URL as canonical is stored once, under that URL.

The manifest is rewritten at the end of the crawl, before the ingest: a kill at any
point leaves mirror files whose content the pipeline's hashes compare with the index,
so the next sync converges whatever was written.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx
from pydantic import Field, field_validator

from ingest.discovery import SourceFile
from ingest.pipeline import Listing
from ingest.quality import Finding
from ingest.sources.base import Fetched, KindConfig, SourceError, SourceKind
from ingest.sources.web_fetch import (
    SUFFIXES,
    AddressGuard,
    PageClient,
    Refused,
    normalize,
    origin,
    page_links,
)

_LOC = re.compile(r"<loc>\s*([^<\s]+)\s*</loc>", re.IGNORECASE)


class WebsiteConfig(KindConfig):
    """A website source's settings."""

    start_url: str = Field(description="Where the crawl starts (http:// or https://).")
    sitemap: str | None = Field(None, description="A sitemap.xml whose pages are crawled too.")
    path_prefix: str | None = Field(
        None, description="Only URLs whose path starts so (default: the start URL's folder)."
    )
    max_pages: int = Field(500, ge=1, description="Most pages requested in one crawl.")
    max_depth: int = Field(6, ge=0, description="Most links followed from the start page.")
    max_page_bytes: int = Field(5_000_000, ge=1000, description="Larger pages are skipped.")
    request_interval_s: float = Field(
        0.5, ge=0, description="Pause between requests (robots.txt's Crawl-delay if longer)."
    )

    @field_validator("start_url", "sitemap")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError("no credentials in the URL")
        return normalize(url)


@dataclass
class _Crawl:
    """What one crawl collects."""

    old: dict[str, dict[str, Any]]
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    complete: bool = True  # False: a limit or an error cut it short; nothing unreached goes
    requests: int = 0
    unchanged: int = 0
    downloaded: int = 0


class WebsiteSource(SourceKind):
    """Pages of one site under one path prefix."""

    name = "website"
    target = "start_url"
    Config = WebsiteConfig
    config: WebsiteConfig

    @property
    def prefix(self) -> str:
        if self.config.path_prefix is not None:
            return self.config.path_prefix
        path = urlsplit(self.config.start_url).path
        return path[: path.rfind("/") + 1] or "/"

    def describe(self) -> str:
        return f"{self.config.start_url} (prefix {self.prefix})"

    def in_scope(self, url: str) -> bool:
        """Same scheme and host as the start URL, under the path prefix."""
        start, parts = urlsplit(self.config.start_url), urlsplit(url)
        return (
            parts.scheme == start.scheme
            and parts.netloc == start.netloc
            and parts.path.startswith(self.prefix)
        )

    def fetch(self, state: dict[str, Any]) -> Fetched:
        site = self.context.workdir / "site"
        (site / "pages").mkdir(parents=True, exist_ok=True)
        manifest = site / "manifest.json"
        old = json.loads(manifest.read_text()) if manifest.is_file() else {}
        crawl = _Crawl(old)
        ctx = self.context
        guard = AddressGuard(ctx.allow_private_addresses)
        headers = {"User-Agent": ctx.user_agent}
        with httpx.Client(
            headers=headers, timeout=ctx.request_timeout_s, follow_redirects=False
        ) as http:
            client = PageClient(
                http, guard, urlsplit(self.config.start_url).netloc, self.config.max_page_bytes
            )
            robots = self._robots(client)
            self._crawl(client, robots, crawl, site / "pages")
        kept = dict(crawl.pages)
        if not crawl.complete:  # unreached pages stay until a crawl reaches them
            for url, entry in old.items():
                if url not in kept and url not in crawl.gone:
                    kept[url] = entry
        for url, entry in old.items():
            if url not in kept:
                (site / "pages" / entry["file"]).unlink(missing_ok=True)
        tmp = manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps(kept, indent=0, sort_keys=True))
        tmp.replace(manifest)
        files = [SourceFile((site / "pages" / e["file"]).resolve(), url) for url, e in kept.items()]
        note = (
            f"{crawl.requests} requests: {crawl.downloaded} pages downloaded, "
            f"{crawl.unchanged} unchanged (304), {len(crawl.gone)} gone"
        )
        listing = Listing(sorted(files, key=lambda f: f.source), findings=crawl.findings)
        return Fetched((site / "pages").resolve(), listing, {}, note)

    def _robots(self, client: PageClient) -> RobotFileParser:
        robots = RobotFileParser()
        url = origin(self.config.start_url) + "/robots.txt"
        try:
            reply = client.get(url)
        except (Refused, httpx.HTTPError, ValueError) as exc:
            raise SourceError(f"cannot read {url}: {exc}") from None
        if reply.status == 200:
            robots.parse(reply.body.decode("utf-8", "replace").splitlines())
        elif 400 <= reply.status < 500:
            robots.parse([])  # no robots.txt: everything may be crawled
        else:  # RFC 9309: a server error means crawl nothing for now
            raise SourceError(f"{url} answered {reply.status}; the crawl waits for it")
        return robots

    def _seeds(self, client: PageClient, crawl: _Crawl) -> list[str]:
        seeds = [self.config.start_url]
        if self.config.sitemap:
            try:
                reply = client.get(self.config.sitemap)
            except (Refused, httpx.HTTPError, ValueError) as exc:
                crawl.findings.append(_finding(self.config.sitemap, f"sitemap unread: {exc}"))
                crawl.complete = False
                return seeds
            if reply.status == 200:
                text = reply.body.decode("utf-8", "replace")
                seeds += [normalize(html.unescape(u)) for u in _LOC.findall(text)]
        return seeds

    def _crawl(
        self, client: PageClient, robots: RobotFileParser, crawl: _Crawl, pages: Path
    ) -> None:
        config, agent = self.config, self.context.user_agent
        delay = max(config.request_interval_s, float(robots.crawl_delay(agent) or 0))
        queue = deque((url, 0) for url in self._seeds(client, crawl))
        seen = {url for url, _ in queue}
        refused_by_robots = past_depth = 0
        while queue:
            url, depth = queue.popleft()
            if not self.in_scope(url):
                continue
            if not robots.can_fetch(agent, url):
                refused_by_robots += 1
                continue
            if crawl.requests >= config.max_pages:
                crawl.complete = False
                crawl.findings.append(
                    _finding(
                        config.start_url,
                        f"stopped at max_pages ({config.max_pages}); "
                        f"{len(queue) + 1} more URLs were not crawled",
                    )
                )
                break
            if crawl.requests:
                time.sleep(delay)
            crawl.requests += 1
            links = self._visit(client, url, crawl, pages)
            if links is None:
                continue
            for link in links:
                if link in seen or not self.in_scope(link):
                    continue
                if depth + 1 > config.max_depth:
                    past_depth += 1
                    crawl.complete = False
                    continue
                seen.add(link)
                queue.append((link, depth + 1))
        if past_depth:
            crawl.findings.append(
                _finding(
                    config.start_url,
                    f"{past_depth} links past max_depth ({config.max_depth}) were not followed",
                )
            )
        if refused_by_robots:
            crawl.findings.append(
                _finding(config.start_url, f"{refused_by_robots} URLs left out: robots.txt")
            )
        if not crawl.pages and not crawl.old and crawl.findings:
            first = crawl.findings[0]
            raise SourceError(f"nothing could be crawled: {first.source}: {first.reason}")

    def _visit(self, client: PageClient, url: str, crawl: _Crawl, pages: Path) -> list[str] | None:
        """Fetch one page into the mirror; the links to follow (None: none)."""
        before = crawl.old.get(url, {})
        try:
            reply = client.get(url, before.get("etag"), before.get("last_modified"))
        except (Refused, ValueError) as exc:
            crawl.findings.append(_finding(url, str(exc)))
            return self._keep(url, crawl)
        except httpx.HTTPError as exc:
            if url == self.config.start_url and not crawl.old:
                raise SourceError(f"cannot fetch {url}: {exc}") from None
            crawl.findings.append(_finding(url, f"not fetched: {exc}"))
            return self._keep(url, crawl)
        if reply.status == 304 and before:
            crawl.unchanged += 1
            crawl.pages[url] = before
            return self._links_of(pages / before["file"], url)
        if reply.status in (404, 410):
            crawl.gone.add(url)
            return None
        if reply.status != 200:
            crawl.findings.append(_finding(url, f"answered HTTP {reply.status}"))
            return self._keep(url, crawl)
        suffix = SUFFIXES.get(reply.content_type)
        if suffix is None:
            return None
        found = page_links(reply.body, reply.url) if suffix == ".html" else None
        key = reply.url
        if found and found.canonical and self.in_scope(found.canonical):
            key = found.canonical
        if key in crawl.pages or (found and found.noindex):
            return found.links if found and not found.nofollow else None
        name = hashlib.sha256(key.encode()).hexdigest()[:32] + suffix
        (pages / name).write_bytes(reply.body)
        crawl.downloaded += 1
        crawl.pages[key] = {
            "file": name,
            "etag": reply.etag,
            "last_modified": reply.last_modified,
        }
        if key != url:  # what redirected or named a canonical is not another page
            crawl.gone.add(url)
        return found.links if found and not found.nofollow else None

    def _keep(self, url: str, crawl: _Crawl) -> list[str] | None:
        """A page that failed now keeps its previous copy; the crawl is not complete."""
        crawl.complete = False
        if url in crawl.old:
            crawl.pages[url] = crawl.old[url]
        return None

    @staticmethod
    def _links_of(file: Path, url: str) -> list[str] | None:
        if file.suffix != ".html" or not file.is_file():
            return None
        found = page_links(file.read_bytes(), url)
        return None if found.nofollow else found.links


def _finding(source: str, reason: str) -> Finding:
    return Finding("source", "warning", reason, source)
