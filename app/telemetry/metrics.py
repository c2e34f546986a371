"""Prometheus metrics: one registry per app, so several apps (tests) never collide.

Every name here is listed in docs/observability.md; deploy/prometheus and
deploy/grafana use only these (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.store.db import Database
from app.store.models import OUTCOMES, Document, IngestRun

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
# From 0 up: prometheus_client drops a histogram's _sum when a bucket is negative, and
# the mean retrieval score needs it. (Cosine scores below 0 fall in the first bucket.)
SCORE_BUCKETS = tuple(round(x * 0.1, 1) for x in range(11))
TOKEN_RATE_BUCKETS = (1, 5, 10, 20, 40, 60, 80, 120, 200, 400)


class IngestCollector(Collector):
    """Ingest figures read from the database at scrape time: ingest runs in its own
    short-lived CLI process, which Prometheus could never scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Runs by status, files by outcome, chunks written, last run's end time, and
        what each collection holds now (a sudden drop alerts)."""
        runs = CounterMetricFamily(
            "docchat_ingest_runs", "Ingest runs by final status.", labels=["status"]
        )
        files = CounterMetricFamily(
            "docchat_ingest_files", "Files seen by ingest runs, by outcome.", labels=["outcome"]
        )
        chunks = CounterMetricFamily("docchat_ingest_chunks", "Chunks written by ingest runs.")
        last = GaugeMetricFamily(
            "docchat_ingest_last_run_timestamp_seconds", "End of the last finished ingest run."
        )
        documents = GaugeMetricFamily(
            "docchat_collection_documents",
            "Documents indexed in each collection.",
            labels=["collection"],
        )
        chunk_count = GaugeMetricFamily(
            "docchat_collection_chunks",
            "Chunks indexed in each collection.",
            labels=["collection"],
        )
        outcomes = OUTCOMES
        with self.db.session() as session:
            for collection, docs, held in session.execute(
                select(
                    Document.collection,
                    func.count(),
                    func.coalesce(func.sum(Document.n_chunks), 0),
                )
                .where(Document.status == "indexed")
                .group_by(Document.collection)
            ):
                documents.add_metric([collection], float(docs))
                chunk_count.add_metric([collection], float(held))
            for status, count in session.execute(
                select(IngestRun.status, func.count())
                .where(IngestRun.dry_run.is_(False))
                .group_by(IngestRun.status)
            ):
                runs.add_metric([status], count)
            sums = session.execute(
                select(
                    *(func.coalesce(func.sum(getattr(IngestRun, o)), 0) for o in outcomes),
                    func.coalesce(func.sum(IngestRun.chunks_written), 0),
                    func.max(IngestRun.finished_at),
                ).where(IngestRun.dry_run.is_(False))
            ).one()
        for outcome, value in zip(outcomes, sums[: len(outcomes)], strict=True):
            files.add_metric([outcome], float(value))
        chunks.add_metric([], float(sums[len(outcomes)]))
        finished = sums[-1]
        last.add_metric([], finished.timestamp() if finished else 0.0)
        yield from (runs, files, chunks, last, documents, chunk_count)


class Metrics:
    """The app's metrics and the registry /metrics renders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "docchat_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "docchat_http_request_duration_seconds",
            "Time to the end of the response (the whole stream for SSE).",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_duration = Histogram(
            "docchat_chat_stage_duration_seconds",
            "Time of each answer stage: embed, retrieve, prompt (to first token), generate, check.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "docchat_prompt_tokens", "Prompt tokens evaluated by the model.", registry=r
        )
        self.completion_tokens = Counter(
            "docchat_completion_tokens", "Tokens generated by the model.", registry=r
        )
        self.tokens_per_second = Histogram(
            "docchat_generation_tokens_per_second",
            "Decode speed of each answer.",
            buckets=TOKEN_RATE_BUCKETS,
            registry=r,
        )
        self.retrieval_top_score = Histogram(
            "docchat_retrieval_top_score",
            "Cosine similarity of the best retrieved chunk, per question.",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.grounding_score = Histogram(
            "docchat_answer_grounding_score",
            "Share of each answer supported by its sources.",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.answers = Counter(
            "docchat_answers",
            "Answers by verdict: grounded, ungrounded, no_context, blocked, unchecked.",
            ["verdict"],
            registry=r,
        )
        self.feedback = Counter(
            "docchat_feedback",
            "Ratings users gave answers, by rating (up, down); a changed rating counts again.",
            ["rating"],
            registry=r,
        )
        for rating in ("up", "down"):
            self.feedback.labels(rating)  # both series exist from the start, at 0
        self.signins = Counter(
            "docchat_signins",
            "Sign-ins through the OpenID provider, by outcome (ok, refused).",
            ["outcome"],
            registry=r,
        )
        for outcome in ("ok", "refused"):
            self.signins.labels(outcome)
        self.auth_refusals = Counter(
            "docchat_auth_refusals",
            "Refused sign-in steps, bearer tokens, sessions and cross-site requests, by "
            "reason (token_expired, state_mismatch, csrf_failed, user_disabled, "
            "collection_not_readable, ...).",
            ["reason"],
            registry=r,
        )
        self.llm_waiting = Gauge(
            "docchat_llm_waiting_requests", "Requests waiting for the model.", registry=r
        )
        self.llm_running = Gauge(
            "docchat_llm_running_generations", "Generations running now.", registry=r
        )
        self.alerts_firing = Gauge(
            "docchat_alerts_firing",
            "Monitors currently alerting (1) or not (0).",
            ["alert"],
            registry=r,
        )
        self.model_info = Info("docchat_model", "The models in use.", registry=r)

    def rejections(self) -> float:
        """Requests answered 429 since start (a full queue, or a rate limit)."""
        return sum(
            sample.value
            for metric in self.http_requests.collect()
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels.get("status") == "429"
        )

    def bind_engine(self, waiting: Callable[[], float], running: Callable[[], float]) -> None:
        """Read the engine's queue gauges at scrape time."""
        self.llm_waiting.set_function(waiting)
        self.llm_running.set_function(running)

    def set_model(self, engine: Any, embedding_model: str) -> None:
        """docchat_model_info: the chat model in service (name and file hash) and the
        embedding model; set again on every swap."""
        self.model_info.info(
            {
                "model": str(engine.model_id),
                "model_sha256": str(engine.model_sha256 or ""),
                "embedding_model": embedding_model,
            }
        )

    def bind_database(self, db: Database) -> None:
        """Add the ingest and source-sync figures kept in the database."""
        from app.telemetry.source_metrics import SourceCollector

        self.registry.register(IngestCollector(db))
        self.registry.register(SourceCollector(db))
