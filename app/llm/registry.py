"""The model registry: chat models as versioned releases in the database.

Each model is a GGUF file pinned by its sha256, with what the file says about itself
and its latest evaluation. Activations are kept in order: the newest names the model in
service, and `rollback` walks the history back. A file whose bytes changed since it was
registered is refused, never loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select

from app.llm.gguf_info import NotAModel, read_info
from app.store import audit
from app.store.db import Database
from app.store.models import Adapter, ChatModel, ModelActivation, utcnow
from common.files import file_sha256

if TYPE_CHECKING:
    from app.llm.adapters import AdapterEntry

# Names become file names: matched whole (fullmatch), so "abc\n" is no name.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class RegistryError(ValueError):
    """A registry request that cannot be done; the message says why and what to do."""


class IncompatibleAdapter(RegistryError):
    """An adapter that was not trained on this base model."""

    def __init__(self, adapter: str, model: str, reasons: list[str]) -> None:
        super().__init__(
            f"adapter {adapter!r} cannot be served on model {model!r}: " + "; ".join(reasons)
        )
        self.reasons = reasons


class ModelFileChanged(RegistryError):
    """The model's file is missing or its bytes no longer match the registered hash."""


_Registered = TypeVar("_Registered", ChatModel, Adapter)


def store_report(
    db: Database,
    table: type[_Registered],
    kind: str,
    name: str,
    report: dict[str, Any],
) -> None:
    """Keep the latest evaluation of a registered model or adapter, found by name."""
    with db.session() as session:
        row = session.scalar(select(table).where(table.name == name))
        if row is None:
            raise RegistryError(f"no {kind} named {name!r}")
        row.eval_report = report
        row.evaluated_at = utcnow()


def verify_file(kind: str, name: str, path: Path, sha256: str) -> None:
    """ModelFileChanged unless a registered file (a model's, an adapter's) is there with
    the bytes it had when it was registered."""
    if not path.is_file():
        raise ModelFileChanged(
            f"{kind} {name!r}: its file {path} is missing; put it back or register the {kind} again"
        )
    actual = file_sha256(path)
    if actual != sha256:
        raise ModelFileChanged(
            f"{kind} {name!r}: {path} changed since it was registered (sha256 "
            f"{actual[:12]}… instead of {sha256[:12]}…); refusing to load it. "
            "Restore the file, or register the new one under another name"
        )


@dataclass(frozen=True)
class ModelEntry:
    """A registered model as callers see it."""

    name: str
    path: Path
    sha256: str
    size_bytes: int
    architecture: str
    parameters: int | None
    quantization: str
    context_length: int | None
    chat_template: bool
    source: str
    added_at: datetime
    eval_report: dict[str, Any] | None
    evaluated_at: datetime | None
    active: bool = False
    # The LoRA adapter served on it (the active release's, or a candidate's).
    adapter: AdapterEntry | None = None

    @property
    def adapter_sha256(self) -> str | None:
        """The served adapter's hash (None: the base model alone)."""
        return self.adapter.sha256 if self.adapter else None

    @property
    def release(self) -> str:
        """The model's name, with its adapter's after a plus sign."""
        return f"{self.name}+{self.adapter.name}" if self.adapter else self.name

    @classmethod
    def of(cls, row: ChatModel, active: bool) -> ModelEntry:
        """The entry of a database row."""
        return cls(
            name=row.name,
            path=Path(row.path),
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            architecture=row.architecture,
            parameters=row.parameters,
            quantization=row.quantization,
            context_length=row.context_length,
            chat_template=row.chat_template,
            source=row.source,
            added_at=row.added_at,
            eval_report=row.eval_report,
            evaluated_at=row.evaluated_at,
            active=active,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for `models show --json` and the admin API."""
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "architecture": self.architecture,
            "parameters": self.parameters,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "chat_template": self.chat_template,
            "source": self.source,
            "added_at": self.added_at.isoformat(),
            "active": self.active,
            "adapter": self.adapter.name if self.adapter else None,
            "evaluated_at": self.evaluated_at.isoformat() if self.evaluated_at else None,
            "eval_report": self.eval_report,
        }


@dataclass(frozen=True)
class Activation:
    """One change of the model in service."""

    model_name: str
    model_sha256: str
    previous: str | None
    action: str
    forced: bool
    actor: str
    note: str
    created_at: datetime
    adapter_name: str | None = None
    adapter_sha256: str | None = None


class ModelRegistry:
    """Adds, lists, activates and rolls back chat models, in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        path: Path,
        *,
        name: str | None = None,
        source: str = "file",
        progress: Callable[[int], None] | None = None,
    ) -> ModelEntry:
        """Register a GGUF file under `name` (default: its file name without suffix)."""
        path = path.expanduser().resolve()
        if not path.is_file():
            raise RegistryError(f"no such model file: {path}")
        name = name or path.stem
        if not NAME.fullmatch(name):
            raise RegistryError(f"invalid model name {name!r}: use 1-100 of [A-Za-z0-9._-]")
        try:
            info = read_info(path)
        except NotAModel as exc:
            raise RegistryError(str(exc)) from None
        sha256 = file_sha256(path, progress)
        with self.db.session() as session:
            if session.scalar(select(ChatModel).where(ChatModel.name == name)):
                raise RegistryError(f"a model named {name!r} is registered already")
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

    def entries(self) -> list[ModelEntry]:
        """Every registered model, oldest first, the active one marked."""
        active = self.active_name()
        with self.db.session() as session:
            rows = session.scalars(select(ChatModel).order_by(ChatModel.added_at)).all()
            return [ModelEntry.of(row, row.name == active) for row in rows]

    def get(self, name: str) -> ModelEntry:
        """The model named `name`, or RegistryError listing the known names."""
        active = self.active_name()
        with self.db.session() as session:
            row = session.scalar(select(ChatModel).where(ChatModel.name == name))
            if row is None:
                known = ", ".join(session.scalars(select(ChatModel.name))) or "none yet"
                raise RegistryError(f"no model named {name!r} (registered: {known})")
            return ModelEntry.of(row, row.name == active)

    def find_by_hash(self, sha256: str) -> ModelEntry | None:
        """The model whose file has this hash, if one is registered."""
        with self.db.session() as session:
            row = session.scalar(select(ChatModel).where(ChatModel.sha256 == sha256))
            return None if row is None else ModelEntry.of(row, row.name == self.active_name())

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
        entry = self.get(name)
        if adapter_name is None:
            return entry
        from app.llm.adapters import AdapterRegistry

        return replace(entry, adapter=AdapterRegistry(self.db).get(adapter_name))

    def active_name(self) -> str | None:
        """The name of the model in service (None before the first activation)."""
        with self.db.session() as session:
            latest = session.scalar(
                select(ModelActivation).order_by(ModelActivation.id.desc()).limit(1)
            )
            return None if latest is None else latest.model_name

    def active(self) -> ModelEntry | None:
        """The model in service, with the adapter served on it."""
        with self.db.session() as session:
            latest = session.scalar(
                select(ModelActivation).order_by(ModelActivation.id.desc()).limit(1)
            )
            if latest is None:
                return None
            name, adapter_name = latest.model_name, latest.adapter_name
        return self._release(name, adapter_name)

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
        """Record `name` as the model in service, with `adapter` on it or none (the
        gate has been passed or forced). An adapter trained on another base is refused
        whatever the gate said. The one place a release goes into service: every
        activation, and every refusal here, is in the audit trail."""
        kind = audited_as or (f"model.{action}" if adapter is None else "adapter.activate")
        target = f"{name}+{adapter.name}" if adapter is not None else name
        try:
            entry = self.get(name)
            self.verify(entry)
            if adapter is not None:
                from app.llm.adapters import AdapterRegistry, compatibility

                reasons = compatibility(adapter, entry)
                if reasons:
                    raise IncompatibleAdapter(adapter.name, entry.name, reasons)
                AdapterRegistry(self.db).verify(adapter)
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
                    "adapter_sha256": adapter.sha256 if adapter else None,
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
                    adapter_sha256=adapter.sha256 if adapter else None,
                )
            )
        return replace(self.get(name), adapter=adapter)

    def rollback(self, *, actor: str) -> ModelEntry:
        """Return to the model in service before the current one."""
        target = self.rollback_target()
        if target is None:
            reason = "nothing to roll back to: only one model was ever active"
            audit.record_in(self.db, actor, "model.rollback", "", "refused", reason)
            raise RegistryError(reason)
        return self.activate(target.name, actor=actor, action="rollback", adapter=target.adapter)

    def seed(self, path: Path, *, name: str | None = None) -> ModelEntry:
        """The configured model, registered (if it is not) and made active: the first
        start of a deployment, or the first after an upgrade to the registry."""
        from app.llm.catalog import CATALOG

        sha256 = file_sha256(path)
        known = next((m for m in CATALOG.values() if m.sha256 == sha256), None)
        source = f"catalog:{known.name}" if known else "settings"
        entry = self.find_by_hash(sha256)
        if entry is None:
            try:
                entry = self.add(path, name=name or (known.name if known else None), source=source)
            except RegistryError:  # another process seeded it first
                entry = self.find_by_hash(sha256)
                if entry is None:
                    raise
        return self.activate(entry.name, actor=audit.SETTINGS, action="seed")

    def verify(self, entry: ModelEntry) -> None:
        """ModelFileChanged unless the file is there with the registered bytes."""
        try:
            verify_file("model", entry.name, entry.path, entry.sha256)
        except ModelFileChanged as exc:
            catalog = entry.source.removeprefix("catalog:")
            if catalog == entry.source or entry.path.is_file():
                raise
            # A catalog model (a restore onto a new machine, a cleaned cache): the
            # catalog provisions the same bytes again, checked by their hash.
            raise ModelFileChanged(
                f"{exc}, or install it again from the catalog: docchat models pull {catalog}"
            ) from None

    def record_report(self, name: str, report: dict[str, Any]) -> None:
        """Keep the latest evaluation of a model."""
        store_report(self.db, ChatModel, "model", name, report)
