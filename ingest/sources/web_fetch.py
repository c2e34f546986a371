"""One page of a crawl: a guarded GET (scope, address and size checks at every redirect
hop, conditional headers), and what a page links to.

No request leaves for an address inside the server's own network (loopback, private,
link-local, reserved) unless sources.allow_private_addresses says so, and no redirect
leaves the source's host: a site must not turn the crawler into a way in (server-side
request forgery). The host is resolved and checked before each request.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

import httpx

REDIRECTS = (301, 302, 303, 307, 308)
MAX_HOPS = 5
# What is stored, by content type: the suffix tells the loader the format.
SUFFIXES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "application/pdf": ".pdf",
}


class Refused(Exception):
    """A request the crawl must not make (another host, an inside address)."""


def normalize(url: str) -> str:
    """The URL without its fragment, scheme and host in lower case, no default port."""
    url, _ = urldefrag(url.strip())
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def origin(url: str) -> str:
    """scheme://host[:port] of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class AddressGuard:
    """Refuses hosts that resolve to addresses inside the server's network."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._checked: dict[str, str | None] = {}

    def check(self, url: str) -> None:
        """Raise Refused if the URL's host is not allowed (or cannot be resolved)."""
        if self.allow_private:
            return
        host = urlsplit(url).hostname or ""
        if host not in self._checked:
            self._checked[host] = self._problem(host)
        problem = self._checked[host]
        if problem:
            raise Refused(problem)

    @staticmethod
    def _problem(host: str) -> str | None:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            return f"cannot resolve {host}: {exc}"
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if (
                address.is_private
                or address.is_loopback
                or address.is_link_local
                or address.is_reserved
                or address.is_multicast
                or address.is_unspecified
            ):
                return (
                    f"{host} resolves to {address}, an address inside the network "
                    "(sources.allow_private_addresses is off)"
                )
        return None


@dataclass
class Response:
    """A page as fetched: status (304 when unchanged), final URL, body and validators."""

    status: int
    url: str
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None


class PageClient:
    """GETs within one host, hop by hop, bounded in size."""

    def __init__(
        self,
        client: httpx.Client,
        guard: AddressGuard,
        host: str,
        max_bytes: int,
    ) -> None:
        self.client, self.guard, self.host, self.max_bytes = client, guard, host, max_bytes

    def get(self, url: str, etag: str | None = None, modified: str | None = None) -> Response:
        """The page at `url` after redirects. Refused for a hop off the host or to an
        inside address; ValueError over the size limit; httpx errors as they come."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        for _ in range(MAX_HOPS + 1):
            if (urlsplit(url).netloc or "").lower() != self.host:
                raise Refused(f"redirect to another host refused: {url}")
            self.guard.check(url)
            with self.client.stream("GET", url, headers=headers) as reply:
                if reply.status_code in REDIRECTS and "location" in reply.headers:
                    url = normalize(urljoin(url, reply.headers["location"]))
                    headers = {}  # validators belong to the first URL
                    continue
                if reply.status_code != 200:
                    return Response(reply.status_code, url)
                body = bytearray()
                for part in reply.iter_bytes():
                    body += part
                    if len(body) > self.max_bytes:
                        raise ValueError(f"page larger than max_page_bytes ({self.max_bytes})")
                kind = reply.headers.get("content-type", "").split(";")[0].strip().lower()
                return Response(
                    200,
                    url,
                    bytes(body),
                    kind,
                    reply.headers.get("etag"),
                    reply.headers.get("last-modified"),
                )
        raise Refused(f"more than {MAX_HOPS} redirects from {url}")


@dataclass
class PageLinks:
    """What an HTML page says about links: its links, canonical URL, robots meta."""

    links: list[str] = field(default_factory=list)
    canonical: str | None = None
    nofollow: bool = False
    noindex: bool = False


class _LinkParser(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.found = PageLinks()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        if tag == "base" and values.get("href"):
            self.base = urljoin(self.base, values["href"])
        elif tag == "a" and values.get("href"):
            self.found.links.append(urljoin(self.base, values["href"]))
        elif tag == "link" and "canonical" in values.get("rel", "").lower().split():
            if values.get("href"):
                self.found.canonical = urljoin(self.base, values["href"])
        elif tag == "meta" and values.get("name", "").lower() == "robots":
            content = values.get("content", "").lower()
            self.found.nofollow = "nofollow" in content or "none" in content
            self.found.noindex = "noindex" in content or "none" in content


def page_links(html: bytes, url: str) -> PageLinks:
    """Links (absolute, normalized), canonical URL and robots meta of an HTML page."""
    parser = _LinkParser(url)
    try:
        parser.feed(html.decode("utf-8", "replace"))
        parser.close()
    except Exception:  # html.parser is lenient; a page it still chokes on has no links
        return PageLinks()
    found = parser.found
    found.links = [
        normalize(link) for link in found.links if urlsplit(link).scheme in ("http", "https")
    ]
    if found.canonical:
        found.canonical = normalize(found.canonical)
    return found
