"""The release registry: models and adapters as registered files, and which release
served when.

Each file is pinned by its sha256 when it is registered, with what it says about itself
and its latest evaluation; a file whose bytes changed since is refused, never loaded.
Activations are kept in order: the newest names the release in service (a model, with
the adapter served on it or none), and `rollback` walks the history back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.llm.gguf_info import NotAModel, read_info
from app.releases.entries import (
    NAME,
    Activation,
    AdapterEntry,
    Kind,
    ModelEntry,
    Registered,
    compatibility,
)
from app.releases.errors import IncompatibleAdapter, ModelFileChanged, NotRegistered, RegistryError
from app.store import audit
from app.store.db import Database
from app.store.models import Adapter, ChatModel, ModelActivation, utcnow
from common.files import file_sha256

_Row = TypeVar("_Row", ChatModel, Adapter)
TABLES: dict[Kind, type[ChatModel] | type[Adapter]] = {"model": ChatModel, "adapter": Adapter}


class Registry:
    """Registers models and adapters, and activates and rolls back releases, in the
    database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- registered files --------------------------------------------------------

    def add_model(
        self,
        path: Path,
        *,
        name: str | None = None,
        source: str = "file",
        progress: Callable[[int], None] | None = None,
    ) -> ModelEntry:
        """Register a GGUF model file under `name` (default: its file name without
        suffix)."""
        path = self._file(path, "model")
        name = self._named("model", name or path.stem)
        try:
            info = read_info(path)
        except NotAModel as exc:
            raise RegistryError(str(exc)) from None
        sha256 = file_sha256(path, progress)
        with self.db.session() as session:
            self._free(session, "model", name)
            same = session.scalar(select(ChatModel).where(ChatModel.sha256 == sha256))
            if same is not None:
                raise RegistryError(f"this file is registered already, as {same.name!r}")
            row = ChatModel(
                name=name,
                path=str(path),
                sha256=sha256,
                size_bytes=path.stat().st_size,
                architecture=info.architecture,
                parameters=info.parameters,
                quantization=info.quantization,
                context_length=info.context_length,
                chat_template=info.chat_template,
                source=source,
            )
            session.add(row)
            session.flush()
            return ModelEntry.of(row, active=False)

    def add_adapter(
        self,
        path: Path,
        *,
        name: str,
        base: ModelEntry,
        dataset_name: str,
        dataset_sha256: str,
        hyperparameters: dict[str, Any],
        training: dict[str, Any],
    ) -> AdapterEntry:
        """Register an adapter file trained on `base`."""
        path = self._file(path, "adapter")
        self._named("adapter", name)
        dims = read_info(base.path).dimensions
        with self.db.session() as session:
            self._free(session, "adapter", name)
            row = Adapter(
                name=name,
                path=str(path),
                sha256=file_sha256(path),
                size_bytes=path.stat().st_size,
                base_name=base.name,
                base_sha256=base.sha256,
                architecture=base.architecture,
                dimensions=dims,
                dataset_name=dataset_name,
                dataset_sha256=dataset_sha256,
                hyperparameters=hyperparameters,
                training=training,
            )
            session.add(row)
            session.flush()
            return AdapterEntry.of(row)

    @staticmethod
    def _file(path: Path, kind: Kind) -> Path:
        path = path.expanduser().resolve()
        if not path.is_file():
            raise RegistryError(f"no such {kind} file: {path}")
        return path

    @staticmethod
    def _named(kind: Kind, name: str) -> str:
        if not NAME.fullmatch(name):
            raise RegistryError(f"invalid {kind} name {name!r}: use 1-100 of [A-Za-z0-9._-]")
        return name

    @staticmethod
    def _free(session: Session, kind: Kind, name: str) -> None:
        table = TABLES[kind]
        if session.scalar(select(table).where(table.name == name)):
            article = "an" if kind == "adapter" else "a"
            raise RegistryError(f"{article} {kind} named {name!r} is registered already")

    def models(self) -> list[ModelEntry]:
        """Every registered model, oldest first, the active one marked."""
        active = self.active_name()
        with self.db.session() as session:
            rows = session.scalars(select(ChatModel).order_by(ChatModel.added_at)).all()
            return [ModelEntry.of(row, row.name == active) for row in rows]

    def adapters(self) -> list[AdapterEntry]:
        """Every registered adapter, oldest first."""
        with self.db.session() as session:
            rows = session.scalars(select(Adapter).order_by(Adapter.created_at)).all()
            return [AdapterEntry.of(row) for row in rows]

    def model(self, name: str) -> ModelEntry:
        """The model named `name` (alone), or NotRegistered listing the known names."""
        active = self.active_name()
        with self.db.session() as session:
            row = self._row(session, ChatModel, "model", name)
            return ModelEntry.of(row, row.name == active)

    def adapter(self, name: str) -> AdapterEntry:
        """The adapter named `name`, or NotRegistered listing the known names."""
        with self.db.session() as session:
            return AdapterEntry.of(self._row(session, Adapter, "adapter", name))

    def get(self, kind: Kind, name: str) -> Registered:
        """The model or adapter named `name`."""
        return self.model(name) if kind == "model" else self.adapter(name)

    @staticmethod
    def _row(session: Session, table: type[_Row], kind: Kind, name: str) -> _Row:
        row = session.scalar(select(table).where(table.name == name))
        if row is None:
            known = ", ".join(session.scalars(select(table.name))) or "none yet"
            raise NotRegistered(f"no {kind} named {name!r} (registered: {known})")
        return row

    def find_model(self, sha256: str) -> ModelEntry | None:
        """The model whose file has this hash, if one is registered."""
        with self.db.session() as session:
            row = session.scalar(select(ChatModel).where(ChatModel.sha256 == sha256))
            return None if row is None else ModelEntry.of(row, row.name == self.active_name())

    def verify(self, entry: Registered) -> None:
        """ModelFileChanged unless the file is there with the registered bytes (a
        release's: the model's and its adapter's)."""
        _verify_file(entry)
        if isinstance(entry, ModelEntry) and entry.adapter is not None:
            _verify_file(entry.adapter)

    def record_report(self, entry: Registered, report: dict[str, Any]) -> None:
        """Keep the latest evaluation of a model or an adapter."""
        with self.db.session() as session:
            row: ChatModel | Adapter = (
                self._row(session, ChatModel, "model", entry.name)
                if entry.kind == "model"
                else self._row(session, Adapter, "adapter", entry.name)
            )
            row.eval_report = report
            row.evaluated_at = utcnow()

    # -- the release in service ----------------------------------------------------

    def history(self) -> list[Activation]:
        """Every activation, oldest first."""
        with self.db.session() as session:
            rows = session.scalars(select(ModelActivation).order_by(ModelActivation.id)).all()
            return [
                Activation(
                    r.model_name,
                    r.model_sha256,
                    r.previous,
                    r.action,
                    r.forced,
                    r.actor,
                    r.note,
                    r.created_at,
                    r.adapter_name,
                    r.adapter_sha256,
                )
                for r in rows
            ]

    def _stack(self) -> list[tuple[str, str | None]]:
        """The releases (model, adapter) in service over time, rollbacks undone: the
        last one is active, the one before it is what `rollback` returns to."""
        stack: list[tuple[str, str | None]] = []
        for activation in self.history():
            release = (activation.model_name, activation.adapter_name)
            if activation.action == "rollback":
                if stack:
                    stack.pop()
                if not stack or stack[-1] != release:
                    stack.append(release)
            else:
                stack.append(release)
        return stack

    def _release(self, name: str, adapter_name: str | None) -> ModelEntry:
        entry = self.model(name)
        return entry if adapter_name is None else replace(entry, adapter=self.adapter(adapter_name))

    def _latest(self) -> tuple[str, str | None] | None:
        with self.db.session() as session:
            latest = session.scalar(
                select(ModelActivation).order_by(ModelActivation.id.desc()).limit(1)
            )
            return None if latest is None else (latest.model_name, latest.adapter_name)

    def active_name(self) -> str | None:
        """The name of the model in service (None before the first activation)."""
        latest = self._latest()
        return None if latest is None else latest[0]

    def active(self) -> ModelEntry | None:
        """The release in service: the model, with the adapter served on it."""
        latest = self._latest()
        return None if latest is None else self._release(*latest)

    def rollback_target(self) -> ModelEntry | None:
        """The release (model and adapter) `rollback` would return to."""
        stack = self._stack()
        return self._release(*stack[-2]) if len(stack) >= 2 else None

    def activate(
        self,
        name: str,
        *,
        actor: str,
        action: str = "activate",
        forced: bool = False,
        note: str = "",
        adapter: AdapterEntry | None = None,
        audited_as: str | None = None,
    ) -> ModelEntry:
        """Record model `name`, with `adapter` on it or none, as the release in service
        (the gate has been passed or forced). An adapter trained on another base is
        refused whatever the gate said. The one place a release goes into service:
        every activation, and every refusal here, is in the audit trail."""
        plain = adapter is None or action != "activate"  # a rollback is one, adapter or not
        kind = audited_as or (f"model.{action}" if plain else "adapter.activate")
        target = f"{name}+{adapter.name}" if adapter is not None else name
        try:
            entry = self.model(name)
            if adapter is not None:
                reasons = compatibility(adapter, entry)
                if reasons:
                    raise IncompatibleAdapter(adapter.name, entry.name, reasons)
                entry = replace(entry, adapter=adapter)
            self.verify(entry)
        except RegistryError as exc:
            audit.record_in(self.db, actor, kind, target, "refused", str(exc), {"forced": forced})
            raise
        previous = self.active_name()
        with self.db.session() as session:
            audit.record(
                session,
                actor,
                kind,
                target,
                detail={
                    "model": entry.name,
                    "sha256": entry.sha256,
                    "adapter": adapter.name if adapter else None,
                    "adapter_sha256": entry.adapter_sha256,
                    "previous": previous,
                    "forced": forced,
                    "note": note,
                },
            )
            session.add(
                ModelActivation(
                    model_name=entry.name,
                    model_sha256=entry.sha256,
                    previous=previous,
                    action=action,
                    forced=forced,
                    actor=actor,
                    note=note,
                    adapter_name=adapter.name if adapter else None,
                    adapter_sha256=entry.adapter_sha256,
                )
            )
        return replace(self.model(name), adapter=adapter)

    def rollback(self, *, actor: str) -> ModelEntry:
        """Return to the release in service before the current one."""
        target = self.rollback_target()
        if target is None:
            reason = "nothing to roll back to: only one model was ever active"
            audit.record_in(self.db, actor, "model.rollback", "", "refused", reason)
            raise RegistryError(reason, code="nothing_to_roll_back")
        return self.activate(target.name, actor=actor, action="rollback", adapter=target.adapter)

    def seed(self, path: Path, *, name: str | None = None) -> ModelEntry:
        """The configured model, registered (if it is not) and made active: the first
        start of a deployment, or the first after an upgrade to the registry."""
        from app.llm.catalog import CATALOG

        sha256 = file_sha256(path)
        known = next((m for m in CATALOG.values() if m.sha256 == sha256), None)
        source = f"catalog:{known.name}" if known else "settings"
        entry = self.find_model(sha256)
        if entry is None:
            try:
                entry = self.add_model(
                    path, name=name or (known.name if known else None), source=source
                )
            except RegistryError:  # another process seeded it first
                entry = self.find_model(sha256)
                if entry is None:
                    raise
        return self.activate(entry.name, actor=audit.SETTINGS, action="seed")


def _verify_file(entry: Registered) -> None:
    if not entry.path.is_file():
        reason = (
            f"{entry.kind} {entry.name!r}: its file {entry.path} is missing; put it back or "
            f"register the {entry.kind} again"
        )
        if isinstance(entry, ModelEntry) and entry.source.startswith("catalog:"):
            catalog = entry.source.removeprefix("catalog:")
            # A catalog model (a restore onto a new machine, a cleaned cache): the
            # catalog provisions the same bytes again, checked by their hash.
            reason += f", or install it again from the catalog: docchat models pull {catalog}"
        raise ModelFileChanged(reason)
    actual = file_sha256(entry.path)
    if actual != entry.sha256:
        raise ModelFileChanged(
            f"{entry.kind} {entry.name!r}: {entry.path} changed since it was registered "
            f"(sha256 {actual[:12]}… instead of {entry.sha256[:12]}…); refusing to load it. "
            f"Restore the file, or register the new one under another name"
        )
