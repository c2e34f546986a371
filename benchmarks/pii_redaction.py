"""What the personal-data redaction catches and what it costs.

Runs app/security/pii.py over the labelled sample (tests/fixtures/pii_sample.jsonl: one
JSON object a line, {"text": ..., "pii": [[kind, exact text], ...]}, negatives with an
empty list) and prints precision and recall per kind, then the time per message for
the sample's lines, a typical question and a long answer.

    .venv/bin/python benchmarks/pii_redaction.py [--sample FILE] [--repeat N]

A found span counts when its kind is right and it overlaps a labelled span; "name" is
labelled but not detected (no language model: see the module's docstring).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.security.pii import KINDS, PiiRedactor

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pii_sample.jsonl"
QUESTION = "How do I rotate the logs of the widget server when it runs under systemd?"
ANSWER = (
    "To rotate the logs, set `logging.rotate_mb` to the size at which a file is closed "
    "(100 by default) and `logging.keep` to how many old files stay [1]. The server "
    "reopens its log file on SIGHUP, so logrotate's `postrotate` can send it one; under "
    "systemd use `ExecReload=/bin/kill -HUP $MAINPID` and `systemctl reload widget` [2]. "
) * 4


def read_sample(path: Path) -> list[dict[str, Any]]:
    """The labelled lines, each with its spans located: (kind, start, end)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        spans = []
        for kind, piece in row["pii"]:
            start = row["text"].index(piece)
            spans.append((kind, start, start + len(piece)))
        rows.append({"text": row["text"], "spans": spans})
    return rows


def score(redactor: PiiRedactor, rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per kind (and "all"): labelled, found, caught (true positives), precision, recall."""
    labelled: Counter[str] = Counter()
    found: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    false: Counter[str] = Counter()
    for row in rows:
        spans = row["spans"]
        labelled.update(kind for kind, _, _ in spans)
        hits = redactor.find(row["text"])
        found.update(h.kind for h in hits)
        for kind, start, end in spans:
            if any(h.kind == kind and h.start < end and start < h.end for h in hits):
                caught[kind] += 1
        for h in hits:
            if not any(k == h.kind and h.start < e and s < h.end for k, s, e in spans):
                false[h.kind] += 1
    report: dict[str, dict[str, float]] = {}
    for kind in [*sorted(set(labelled) | set(found)), "all"]:
        n = sum(labelled.values()) if kind == "all" else labelled[kind]
        f = sum(found.values()) if kind == "all" else found[kind]
        c = sum(caught.values()) if kind == "all" else caught[kind]
        wrong = sum(false.values()) if kind == "all" else false[kind]
        report[kind] = {
            "labelled": n,
            "found": f,
            "caught": c,
            "false_positives": wrong,
            "precision": (f - wrong) / f if f else 1.0,
            "recall": c / n if n else 1.0,
        }
    return report


def microseconds(redactor: PiiRedactor, texts: list[str], repeat: int) -> float:
    """Mean time to redact one of `texts`, in microseconds."""
    start = time.perf_counter()
    for _ in range(repeat):
        for text in texts:
            redactor.redact(text)
    return (time.perf_counter() - start) / (repeat * len(texts)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    rows = read_sample(args.sample)
    redactor = PiiRedactor(KINDS)
    negatives = sum(not r["spans"] for r in rows)
    print(f"{len(rows)} labelled lines ({negatives} without personal data)\n")
    heads = ("labelled", "found", "caught", "false+", "precision", "recall")
    print(f"{'kind':8} " + " ".join(f"{h:>{max(6, len(h))}}" for h in heads))
    for kind, r in score(redactor, rows).items():
        print(
            f"{kind:8} {r['labelled']:8.0f} {r['found']:6.0f} {r['caught']:6.0f} "
            f"{r['false_positives']:6.0f} {r['precision']:9.2f} {r['recall']:7.2f}"
        )
    print()
    redactor.redact(QUESTION)  # warm up (libphonenumber loads its metadata lazily)
    for label, texts in (
        ("sample line", [r["text"] for r in rows]),
        ("question without personal data", [QUESTION]),
        (f"answer of {len(ANSWER)} characters", [ANSWER]),
    ):
        print(f"{label:40} {microseconds(redactor, texts, args.repeat):9.1f} µs per message")


if __name__ == "__main__":
    main()
