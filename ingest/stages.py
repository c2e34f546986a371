"""The stages of an ingest run, one file at a time or overlapped.

Each file goes through three stages: prepare (hash, load, quality checks, chunk),
embed, and finish (write to the stores, count, report progress). Run one after the
other, the CPU idles in each stage's waits and the run takes the sum of the stages.
Overlapped, a thread prepares files ahead and another embeds them, joined by short
queues, while the calling thread writes: the run takes about as long as its slowest
stage (embedding). Consecutive files are embedded in one call (up to `batch_chunks`
chunks), so batches of similar length fill up across small files.

What the overlap must not change, and why it does not: every write happens in the
calling thread, in the order of the files, through the same IndexWriter as a
sequential run's; so a run killed at any point leaves what a sequential run
killed after its last write would have left (files prepared or embedded but not yet
written are simply done again next time). Nothing is written by the other threads.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ingest.index_writer import IndexEntry

T = TypeVar("T")
# While the stages overlap, Python hands its lock between threads every 0.5 ms instead
# of 5: the embedder's thread takes it back after each tensor operation, and waiting up
# to 5 ms each time behind the loading or writing thread cost it 4% of the run
# (docs/performance.md, "Batches by tokens").
SWITCH_INTERVAL_S = 0.0005
# Files prepared ahead of the embedder, and embedded ahead of the writer: enough to
# keep each stage busy through the others' slow files, few enough to hold in memory.
QUEUE_FILES = 16
_POLL_S = 0.1  # how often a blocked thread looks whether the run was stopped


@dataclass
class FileStep:
    """One file after the prepare stage: what is left to embed and to write."""

    source: str
    outcome: str  # new, changed, unchanged, failed or quarantined
    chunks: int = 0  # chunks the file contributes (new or changed)
    texts: list[str] = field(default_factory=list)  # to embed: one per chunk
    entry: IndexEntry | None = None  # to write, with the embeddings of `texts`
    write: Callable[[], None] | None = None  # another write: a withdrawal, fingerprints
    embeddings: list[list[float]] = field(default_factory=list)


@dataclass
class _Failure:
    error: BaseException


_DONE = object()


class _Stopped(Exception):
    pass


@dataclass
class _Channel(Generic[T]):
    """A bounded queue whose waits end when the run is stopped."""

    stop: threading.Event
    items: queue.Queue[object] = field(default_factory=lambda: queue.Queue(QUEUE_FILES))

    def put(self, item: object) -> None:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue
        raise _Stopped

    def get(self, block: bool = True) -> object:
        while not self.stop.is_set():
            try:
                return self.items.get(timeout=_POLL_S) if block else self.items.get_nowait()
            except queue.Empty:
                if not block:
                    raise
        raise _Stopped


Prepare = Callable[[T], FileStep]
Embed = Callable[[list[str]], list[list[float]]]
Finish = Callable[[FileStep], None]


def run_sequential(files: Sequence[T], prepare: Prepare[T], embed: Embed, finish: Finish) -> None:
    """Each file through every stage before the next."""
    for file in files:
        step = prepare(file)
        if step.texts:
            step.embeddings = embed(step.texts)
        finish(step)


def run_overlapped(
    files: Sequence[T],
    prepare: Prepare[T],
    embed: Embed,
    finish: Finish,
    *,
    batch_chunks: int = 256,
) -> None:
    """The stages at the same time: prepare and embed in threads of their own, finish
    here, in the files' order. An error in any stage stops the others and is raised
    here; so is an interrupt of this thread."""
    stop = threading.Event()
    prepared: _Channel[FileStep] = _Channel(stop)
    embedded: _Channel[FileStep] = _Channel(stop)

    def preparing() -> None:
        try:
            for file in files:
                prepared.put(prepare(file))
            prepared.put(_DONE)
        except _Stopped:
            pass
        except BaseException as exc:  # raised again in the calling thread
            _forward(prepared, exc)

    def embedding() -> None:
        try:
            while True:
                batch, last = _gather(prepared, batch_chunks)
                texts = [t for step in batch for t in step.texts]
                vectors = embed(texts) if texts else []
                start = 0
                for step in batch:
                    step.embeddings = vectors[start : start + len(step.texts)]
                    start += len(step.texts)
                    embedded.put(step)
                if last is not None:
                    embedded.put(last)
                    return
        except _Stopped:
            pass
        except BaseException as exc:  # raised again in the calling thread
            _forward(embedded, exc)

    threads = [
        threading.Thread(target=preparing, name="ingest-prepare", daemon=True),
        threading.Thread(target=embedding, name="ingest-embed", daemon=True),
    ]
    with _short_switches():
        for thread in threads:
            thread.start()
        try:
            while True:
                item = embedded.get()
                if item is _DONE:
                    break
                if isinstance(item, _Failure):
                    raise item.error
                assert isinstance(item, FileStep)
                finish(item)
        finally:
            stop.set()
            for thread in threads:
                thread.join()


_switches_lock = threading.Lock()
_switches_held = 0
_switches_before = 0.0


@contextlib.contextmanager
def _short_switches() -> Iterator[None]:
    """sys.setswitchinterval(SWITCH_INTERVAL_S) while any overlapped run is on (a
    server may run two), the process's own interval again after the last."""
    global _switches_held, _switches_before
    with _switches_lock:
        if _switches_held == 0:
            _switches_before = sys.getswitchinterval()
            sys.setswitchinterval(min(SWITCH_INTERVAL_S, _switches_before))
        _switches_held += 1
    try:
        yield
    finally:
        with _switches_lock:
            _switches_held -= 1
            if _switches_held == 0:
                sys.setswitchinterval(_switches_before)


def _gather(prepared: _Channel[FileStep], batch_chunks: int) -> tuple[list[FileStep], object]:
    """The next prepared files, waiting for one and taking those already there while
    their chunks are under `batch_chunks`; and the end of the run (_DONE or a
    _Failure) when it came, else None."""
    batch: list[FileStep] = []
    chunks = 0
    while chunks < batch_chunks:
        try:
            item = prepared.get(block=not batch)
        except queue.Empty:
            break
        if item is _DONE or isinstance(item, _Failure):
            return batch, item
        assert isinstance(item, FileStep)
        batch.append(item)
        chunks += len(item.texts)
    return batch, None


def _forward(channel: _Channel[FileStep], exc: BaseException) -> None:
    with contextlib.suppress(_Stopped):  # the calling thread stopped first
        channel.put(_Failure(exc))
