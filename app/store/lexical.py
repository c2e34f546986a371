"""A lexical (BM25) index over a collection's chunks, derived from the SQL chunks table.

The SQL database is the source of truth: the ingest writes a file's chunks and marks its
document "indexed" in one transaction, and removes a document with its chunks. This
index follows it document by document. `refresh` compares each indexed document's
version (its content hash and chunk count) with what the index holds, takes in the
chunks of new and changed documents and drops those of changed and deleted ones, so it
is incremental and converges on whatever a killed ingest left behind, with no step of
its own to make crash-safe. The same code serves SQLite and PostgreSQL.

The index lives in memory (an inverted index of numpy-friendly arrays, deletions as
tombstones compacted now and then) and is saved to `<data_dir>/lexical/`, stamped with
its format and tokenizer versions, so a restart reads it back and only catches up with
what changed; a file of another version, or an unreadable one, is rebuilt from SQL.

Tokens: lower-cased words and numbers (`snake_case` and dotted or dashed names are
kept whole as well as split: `core.autocrlf` gives `core.autocrlf`, `core`,
`autocrlf`), English stop words dropped, the rest Snowball-stemmed (`undoing` and
`undo` match).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import Stemmer
from sqlalchemy import func, select

from app.store.db import Database
from app.store.models import Chunk, Document

log = logging.getLogger(__name__)

# Bump when the tokens change: an index saved with another version is rebuilt.
TOKENIZER_VERSION = 1
FORMAT_VERSION = 1
# BM25 parameters (the usual ones; Lucene's defaults).
K1 = 1.2
B = 0.75
# Tombstones are compacted away once they are this share of the slots (and at least
# COMPACT_MIN of them), so a long-running server does not grow without bound.
COMPACT_SHARE = 0.3
COMPACT_MIN = 2000
# A changed index is saved at most this often (seconds); a restart catches up anyway.
SAVE_EVERY_S = 60.0

_WORD = re.compile(r"[a-z0-9_]+(?:[.\-:/][a-z0-9_]+)*")
_PART = re.compile(r"[a-z0-9]+")
_STEMMER = Stemmer.Stemmer("english")
_STOP_TEXT = """a about above after again against all am an and any are aren as at be because
been before being below between both but by can cannot could couldn did didn do does doesn
doing don down during each few for from further had hadn has hasn have haven having he her
here hers herself him himself his how i if in into is isn it its itself let me more most
mustn my myself no nor of off on once only or other ought our ours ourselves out over own
same shan she should shouldn so some such than that the their theirs them themselves then
there these they this those through to too under until up very was wasn we were weren what
when where which while who whom why will with won would wouldn you your yours yourself
yourselves s t ll ve re d m want way get use using used need make like just"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


def tokens(text: str) -> list[str]:
    """The index terms of a text, in order (repeats kept: they count)."""
    cache = _TERMS
    if len(cache) > TERM_CACHE:
        cache.clear()
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        terms = cache.get(word)
        if terms is None:
            terms = cache[word] = _terms(word)
        out += terms
    return out


def _terms(word: str) -> tuple[str, ...]:
    """A word's terms: its stem (none for a stop word); a compound name whole and as
    its parts."""
    parts = _PART.findall(word)
    found = [word] if len(parts) > 1 or word != (parts[0] if parts else "") else []
    found += (p for p in parts if p not in STOP_WORDS)
    return tuple(t if not t.isalpha() else _STEMMER.stemWord(t) for t in found)


# Words seen and their terms: a manual repeats its words, so most are looked up here.
_TERMS: dict[str, tuple[str, ...]] = {}
TERM_CACHE = 500_000


@dataclass(frozen=True)
class LexicalHit:
    """A chunk matched by words, with its BM25 score."""

    chunk_id: str
    score: float


@dataclass
class _Doc:
    version: str
    slots: list[int]


def _doc_version(content_hash: str, n_chunks: int) -> str:
    return f"{content_hash}:{n_chunks}"


class LexicalIndex:
    """BM25 over one collection's indexed chunks; safe to share between threads."""

    def __init__(self, db: Database, collection: str, cache_dir: Path | None = None) -> None:
        self.db = db
        self.collection = collection
        self.path = cache_dir / f"{collection}.npz" if cache_dir else None
        self._lock = threading.RLock()
        self._reset()
        self._fingerprint: tuple[object, ...] | None = None
        self._saved_at = 0.0
        self._dirty = False
        if self.path is not None:
            self._load()

    def _reset(self) -> None:
        self._docs: dict[str, _Doc] = {}
        self._ids: list[str] = []  # chunk id per slot ("" once deleted)
        self._lengths = array("i")  # tokens per slot
        self._alive = bytearray()
        self._postings: dict[str, tuple[array[int], array[int]]] = {}
        self._n_alive = 0
        self._total_length = 0

    # --- keeping in step with SQL -------------------------------------------------

    def refresh(self) -> bool:
        """Bring the index in line with the collection's indexed documents; True when
        something changed. Cheap when nothing did (one aggregate query)."""
        with self._lock:
            fingerprint = self._sql_fingerprint()
            if fingerprint == self._fingerprint:
                return False
            with self.db.session() as session:
                rows = session.execute(
                    select(Document.id, Document.content_hash, Document.n_chunks).where(
                        Document.collection == self.collection, Document.status == "indexed"
                    )
                ).all()
            wanted = {row.id: _doc_version(row.content_hash, row.n_chunks) for row in rows}
            stale = [d for d, doc in self._docs.items() if wanted.get(d) != doc.version]
            fresh = [d for d, v in wanted.items() if d not in self._docs or d in stale]
            for doc_id in stale:
                self._remove(doc_id)
            for start in range(0, len(fresh), 200):
                self._add_documents(fresh[start : start + 200], wanted)
            self._fingerprint = fingerprint
            changed = bool(stale or fresh)
            if changed:
                self._dirty = True
                self._maybe_compact()
                log.info(
                    "lexical index %s: %d documents in, %d out (%d chunks)",
                    self.collection,
                    len(fresh),
                    len(stale),
                    self._n_alive,
                )
            if self._dirty and time.monotonic() - self._saved_at >= SAVE_EVERY_S:
                self.save()
            return changed

    def _sql_fingerprint(self) -> tuple[object, ...]:
        """What changes whenever an indexed document is added, changed or removed."""
        with self.db.session() as session:
            row = session.execute(
                select(
                    func.count(Document.id),
                    func.max(Document.updated_at),
                    func.coalesce(func.sum(Document.n_chunks), 0),
                ).where(Document.collection == self.collection, Document.status == "indexed")
            ).one()
        return (row[0], str(row[1]), row[2])

    def _add_documents(self, doc_ids: list[str], versions: dict[str, str]) -> None:
        with self.db.session() as session:
            rows = session.execute(
                select(Chunk.id, Chunk.document_id, Chunk.section, Chunk.text, Document.title)
                .join(Document, Document.id == Chunk.document_id)
                .where(Chunk.document_id.in_(doc_ids), Document.status == "indexed")
                .order_by(Chunk.document_id, Chunk.ord)
            ).all()
        for doc_id in doc_ids:
            self._docs[doc_id] = _Doc(versions[doc_id], [])
        for row in rows:
            terms = tokens(f"{row.title}\n{row.section}\n{row.text}")
            self._add_slot(row.id, row.document_id, terms)

    def _add_slot(self, chunk_id: str, doc_id: str, terms: list[str]) -> None:
        slot = len(self._ids)
        self._ids.append(chunk_id)
        self._lengths.append(len(terms))
        self._alive.append(1)
        self._docs[doc_id].slots.append(slot)
        self._n_alive += 1
        self._total_length += len(terms)
        for term, tf in Counter(terms).items():
            posting = self._postings.get(term)
            if posting is None:
                posting = self._postings[term] = (array("i"), array("H"))
            posting[0].append(slot)
            posting[1].append(min(tf, 65535))

    def _remove(self, doc_id: str) -> None:
        doc = self._docs.pop(doc_id)
        for slot in doc.slots:
            if self._alive[slot]:
                self._alive[slot] = 0
                self._ids[slot] = ""
                self._n_alive -= 1
                self._total_length -= self._lengths[slot]

    def _maybe_compact(self, *, force: bool = False) -> None:
        dead = len(self._ids) - self._n_alive
        if not dead or (
            not force and (dead < COMPACT_MIN or dead < COMPACT_SHARE * len(self._ids))
        ):
            return
        alive = np.frombuffer(bytes(self._alive), dtype=np.uint8).astype(bool)
        new_slot = np.cumsum(alive) - 1
        postings: dict[str, tuple[array[int], array[int]]] = {}
        for term, (slots, tfs) in self._postings.items():
            s = np.frombuffer(slots, dtype=np.int32)
            keep = alive[s]
            if keep.any():
                postings[term] = (
                    array("i", new_slot[s[keep]].astype(np.int32).tobytes()),
                    array("H", np.frombuffer(tfs, dtype=np.uint16)[keep].tobytes()),
                )
        self._postings = postings
        self._ids = [i for i, a in zip(self._ids, self._alive, strict=True) if a]
        self._lengths = array(
            "i", [n for n, a in zip(self._lengths, self._alive, strict=True) if a]
        )
        self._alive = bytearray(b"\x01" * len(self._ids))
        for doc in self._docs.values():
            doc.slots = [int(new_slot[s]) for s in doc.slots if alive[s]]

    # --- searching ----------------------------------------------------------------

    def search(self, query: str, k: int) -> list[LexicalHit]:
        """The k chunks with the highest BM25 score for the query, best first (none
        when no query term occurs)."""
        terms = sorted(set(tokens(query)))
        with self._lock:
            if not self._n_alive or not terms:
                return []
            alive = np.frombuffer(self._alive, dtype=np.uint8)
            lengths = np.frombuffer(self._lengths, dtype=np.int32)
            norm = K1 * (1 - B + B * lengths / (self._total_length / self._n_alive))
            scores = np.zeros(len(self._ids), dtype=np.float64)
            for term in terms:
                posting = self._postings.get(term)
                if posting is None:
                    continue
                slots = np.frombuffer(posting[0], dtype=np.int32)
                live = alive[slots] == 1
                slots = slots[live]
                if not len(slots):
                    continue
                tf = np.frombuffer(posting[1], dtype=np.uint16)[live].astype(np.float64)
                df = len(slots)
                idf = math.log(1 + (self._n_alive - df + 0.5) / (df + 0.5))
                scores[slots] += idf * tf * (K1 + 1) / (tf + norm[slots])
            matched = int(np.count_nonzero(scores))
            if not matched:
                return []
            k = min(k, matched)
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [LexicalHit(self._ids[i], float(scores[i])) for i in top]

    def knows(self, term: str) -> bool:
        """Whether a term (as `tokens` gives them) occurs in the collection."""
        with self._lock:
            return term in self._postings

    def share(self, term: str) -> float:
        """The share of the collection's chunks that hold a term (0.0 when empty)."""
        with self._lock:
            posting = self._postings.get(term)
            if posting is None or not self._n_alive:
                return 0.0
            return sum(self._alive[slot] for slot in posting[0]) / self._n_alive

    @property
    def size(self) -> int:
        """Chunks in the index."""
        return self._n_alive

    # --- on disk ------------------------------------------------------------------

    def save(self) -> None:
        """Write the index (compacted) atomically; a failure only costs a rebuild."""
        if self.path is None:
            return
        with self._lock:
            self._maybe_compact(force=True)
            terms = sorted(self._postings)
            offsets = np.zeros(len(terms) + 1, dtype=np.int64)
            for i, term in enumerate(terms):
                offsets[i + 1] = offsets[i] + len(self._postings[term][0])
            slots = np.concatenate(
                [np.frombuffer(self._postings[t][0], dtype=np.int32) for t in terms]
                or [np.zeros(0, dtype=np.int32)]
            )
            tfs = np.concatenate(
                [np.frombuffer(self._postings[t][1], dtype=np.uint16) for t in terms]
                or [np.zeros(0, dtype=np.uint16)]
            )
            header = {
                "format": FORMAT_VERSION,
                "tokenizer": TOKENIZER_VERSION,
                "collection": self.collection,
                "fingerprint": list(self._fingerprint or ()),
                "docs": {d: [doc.version, doc.slots] for d, doc in self._docs.items()},
                "ids": self._ids,
                "terms": terms,
            }
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
                with os.fdopen(fd, "wb") as out:
                    np.savez(
                        out,
                        header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                        offsets=offsets,
                        slots=slots,
                        tfs=tfs,
                        lengths=np.frombuffer(self._lengths, dtype=np.int32),
                    )
                os.replace(tmp, self.path)
            except OSError as exc:
                log.warning("could not save the lexical index to %s: %s", self.path, exc)
                return
            self._saved_at = time.monotonic()
            self._dirty = False

    def _load(self) -> None:
        assert self.path is not None
        if not self.path.exists():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode())
                if (
                    header.get("format") != FORMAT_VERSION
                    or header.get("tokenizer") != TOKENIZER_VERSION
                    or header.get("collection") != self.collection
                ):
                    log.info("lexical index %s: saved by another version, rebuilding", self.path)
                    return
                offsets, slots, tfs = data["offsets"], data["slots"], data["tfs"]
                lengths = data["lengths"]
                self._ids = list(header["ids"])
                self._lengths = array("i", lengths.astype(np.int32).tobytes())
                self._alive = bytearray(b"\x01" * len(self._ids))
                self._docs = {d: _Doc(v, list(s)) for d, (v, s) in header["docs"].items()}
                for i, term in enumerate(header["terms"]):
                    a, b = int(offsets[i]), int(offsets[i + 1])
                    self._postings[term] = (
                        array("i", slots[a:b].astype(np.int32).tobytes()),
                        array("H", tfs[a:b].astype(np.uint16).tobytes()),
                    )
                self._n_alive = len(self._ids)
                self._total_length = int(lengths.sum())
                self._fingerprint = None  # checked against SQL on the first refresh
                self._saved_at = time.monotonic()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("lexical index %s unreadable (%s): rebuilding", self.path, exc)
            self._reset()
