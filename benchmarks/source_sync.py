"""Benchmark: what a source sync costs, first and again (docs/sources.md).

A manual (default: the Python 3.11 tutorial, Debian's python3.11-doc) is served as a
website by http.server on loopback (it answers If-Modified-Since with 304) and crawled
by a website source: the first crawl + ingest, an unchanged re-sync, and a re-sync after
one page changed. Then the same pages as a git repository (file:// URL): the first sync,
and one after a commit that changes five files. Real stores in a temporary folder, the
configured embedding model. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/source_sync.py [--docs /usr/share/doc/python3.11/html/tutorial]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from app.components import open_ingestor
from app.settings import Settings
from app.store.db import open_database
from ingest.sources.registry import Sources
from ingest.sources.sync import Syncer

DEFAULT_DOCS = Path("/usr/share/doc/python3.11/html/tutorial")


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def git(cwd: Path, *args: str) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.org",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.org",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def timed(settings: Settings, name: str) -> str:
    began = time.perf_counter()
    with open_ingestor(settings) as ingestor:
        result = Syncer(settings, ingestor).sync(name)
    seconds = time.perf_counter() - began
    s = result.summary
    counts = (
        f"added {s.new}, changed {s.changed}, removed {s.deleted}, unchanged {s.unchanged}"
        if s
        else result.error
    )
    return f"{seconds:6.1f} s  {result.status}: {counts} ({result.note})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        site = root / "site" / "manual"
        shutil.copytree(args.docs, site)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=root / "data",
            env="test",
            sources={"allow_private_addresses": True},
        )
        handler = functools.partial(Quiet, directory=str(root / "site"))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        start = f"http://127.0.0.1:{httpd.server_port}/manual/index.html"
        db = open_database(settings)
        sources = Sources(db, settings.data_dir)
        config = {"start_url": start, "request_interval_s": 0, "max_pages": 5000}
        sources.add("web", "web", "website", config)
        pages = sorted(site.rglob("*.html"))
        print(f"{len(pages)} pages of {args.docs}")
        print("website, first crawl + ingest  ", timed(settings, "web"))
        print("website, unchanged re-sync     ", timed(settings, "web"))
        time.sleep(1.1)  # Last-Modified has one-second resolution
        changed = pages[len(pages) // 2]
        changed.write_text(changed.read_text().replace("</body>", "<p>Changed.</p></body>"))
        print("website, one page changed      ", timed(settings, "web"))
        httpd.shutdown()

        repo = root / "repo"
        shutil.copytree(args.docs, repo)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "manual")
        sources.add("repo", "repo", "git", {"url": f"file://{repo}"})
        print("git, first sync                ", timed(settings, "repo"))
        for page in sorted(repo.rglob("*.html"))[:5]:
            page.write_text(page.read_text().replace("</body>", "<p>Edited.</p></body>"))
        git(repo, "commit", "-q", "-am", "five pages")
        print("git, a commit changing 5 files ", timed(settings, "repo"))
        print("git, nothing new               ", timed(settings, "repo"))
        db.close()


if __name__ == "__main__":
    main()
