"""Benchmark: what a clean manual's dry-run ingest reports, by check (findings worth
reading: a clean manual should give next to none; the hostile fixtures in tests/ still
do). Runs a real dry-run ingest (load, checks, chunking; no embedding) into a temporary
SQLite file and prints the findings per check, the five most common reasons, a few of
the documents each check named, and the time. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/findings_on_manual.py [--docs /usr/share/doc/python3.11/html]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

from app.components import open_ingestor
from app.settings import Settings

DEFAULT_DOCS = Path("/usr/share/doc/python3.11/html")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, nargs="+", default=[DEFAULT_DOCS])
    parser.add_argument(
        "--examples", type=int, default=3, help="Documents to name per check (0: none)."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), env="test")  # type: ignore[call-arg]
        started = time.perf_counter()
        with open_ingestor(settings, dry_run=True) as ingestor:
            summary = ingestor.run(args.docs, "bench", dry_run=True)
        seconds = time.perf_counter() - started
    documents = summary.new + summary.changed + summary.unchanged + summary.failed
    by_check = Counter(f.check for f in summary.findings)
    shapes = Counter(re.sub(r"\d+", "N", f.reason)[:90] for f in summary.findings)
    print(f"{documents} documents, {summary.chunks_written} chunks, {seconds:.1f} s")
    print(f"findings: {len(summary.findings)}", dict(by_check) or "")
    for reason, count in shapes.most_common(5):
        print(f"  {count:5}  {reason}")
    for check in by_check:
        named = [f for f in summary.findings if f.check == check][: args.examples]
        for f in named:
            print(f"  {check}: {Path(f.source).name}: {f.reason[:100]}")


if __name__ == "__main__":
    main()
