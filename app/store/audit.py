"""The audit trail: every admin action, appended to `audit_events` and never changed.

`record` adds an event to the caller's session, so the event commits with the change it
describes (and is rolled back with it). A refusal or a failure, whose transaction is
rolled back, is written with `record_in`, in a session of its own. Rows hold names, ids,
counts and flags: never a secret, a key, a setting's value or the text of a message.
Nothing in docchat updates or deletes them; on PostgreSQL a trigger refuses it too.

Every admin request and admin command runs inside an `AdminAction` (the admin routers'
dependency, app/api/deps.py; the CLI's command class, app/cli/audited.py), so the audit
is a property of the action, not of each handler remembering to write one. The rule:
the action writes one generic event (`api.<route>` or `cli.<command>`, with its typed
actor, target and outcome) unless the domain code wrote and committed an event of its
own for it (`model.activate` with the gate's detail, `key.revoke`, ...). Inside an
action every event is written as the action's actor, which is typed (`key:<id>`,
`user:<id>` for a signed-in person, `cli:<OS user>`), never a name a caller chose.
Sign-ins, sign-outs and refused credentials (`auth.*`) are written by the sign-in
service (app/auth/service.py) as the person, or `anonymous` when no one is known.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from app.store.db import Database
from app.store.models import AUDIT_OUTCOMES, AuditEvent

log = logging.getLogger(__name__)

# Who a start of the server is recorded as (settings changes, the scheduled purge).
SERVER = "server"
# Who the registry's first model is recorded as, seeded from the settings.
SETTINGS = "settings"
# Events docchat writes on its own, whatever action happens to trigger them (a command
# that opens the registry seeds it): never the action's own event, never its actor.
SYSTEM_ACTORS = frozenset({SERVER, SETTINGS})
# Every action the domain code writes, for `audit list --action` and the docs; the
# generic events of admin actions add `api.<route name>` and `cli.<group>.<command>`.
ACTIONS = (
    "key.create",
    "key.revoke",
    "model.activate",
    "model.rollback",
    "model.seed",
    "adapter.activate",
    "adapter.deactivate",
    "dataset.build",
    "example.accept",
    "example.correct",
    "example.drop",
    "conversations.purge",
    "conversation.delete",
    "conversations.delete_for_key",
    "backup.create",
    "backup.restore",
    "settings.changed",
    "auth.signin",
    "auth.signout",
    "auth.session",
    "auth.token",
    "auth.csrf",
    "user.disable",
    "user.enable",
)
SETTINGS_ACTION = "settings.changed"


def os_user() -> str:
    """The operating-system user running this process ("unknown" when there is none)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry and no LOGNAME/USER: a bare container
        return "unknown"


# Who a request made with authentication off is recorded as.
ANONYMOUS = "anonymous"


def key_actor(key_id: str) -> str:
    """An API key as an actor: by its id, which docchat chose (never its name)."""
    return f"key:{key_id}"


def cli_actor() -> str:
    """The CLI as an actor, with the OS user running it."""
    return f"cli:{os_user()}"


def actor_name(name: str) -> str:
    """Who an event outside an admin action is recorded as: "cli" is the CLI with the
    OS user, "" is anonymous, anything else (server, settings, a typed actor) as given."""
    if name == "cli":
        return cli_actor()
    return name or ANONYMOUS


@dataclass
class AdminAction:
    """One admin request or command while it runs: what the generic event will say, and
    the events the domain code wrote for it."""

    action: str
    actor: str
    target: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    # Set by the front when it knows better than the exception (a CLI refusal's message).
    reason: str | None = None
    written: list[AuditEvent] = field(default_factory=list)

    def recorded_own(self) -> bool:
        """Whether the domain code wrote an event for this action that was committed (one
        added to a transaction that was rolled back has no identity, and does not count)."""
        return any(inspect(event).has_identity for event in self.written)


_current: ContextVar[AdminAction | None] = ContextVar("docchat_admin_action", default=None)


def current() -> AdminAction | None:
    """The admin action this code runs in (threads and tasks started in it inherit it)."""
    return _current.get()


@contextmanager
def acting(action: AdminAction) -> Iterator[AdminAction]:
    """Run code as `action`: its events are written as the action's actor and counted."""
    token = _current.set(action)
    try:
        yield action
    finally:
        _current.reset(token)


def describe(target: str | None = None, **detail: Any) -> None:
    """Let a handler say more than its route does (the target, flags): names, ids and
    counts only. Nothing outside an admin action."""
    action = current()
    if action is None:
        return
    if target is not None:
        action.target = target
    action.detail.update(detail)


def finish(db: Database, action: AdminAction, outcome: str, reason: str | None = None) -> None:
    """Write the action's generic event, unless the domain code wrote its own. Never
    raises: the action's outcome stands."""
    if action.recorded_own():
        return
    token = _current.set(None)  # the generic event itself is not one of the domain's
    try:
        why = action.reason or reason
        record_in(
            db,
            action.actor,
            action.action,
            action.target,
            outcome,
            why[:500] if why else None,
            action.detail,
        )
    finally:
        _current.reset(token)


def _event(
    actor: str,
    action: str,
    target: str,
    outcome: str,
    reason: str | None,
    detail: dict[str, Any] | None,
) -> AuditEvent:
    if outcome not in AUDIT_OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(AUDIT_OUTCOMES)}")
    within = current()
    if within is not None and actor not in SYSTEM_ACTORS:
        # Inside an admin action, whoever the domain code names, the actor is the typed
        # one the front authenticated: a reviewer's or a key's free name never is.
        actor = within.actor
    return AuditEvent(
        actor=actor_name(actor)[:100],
        action=action[:64],
        target=(target or "")[:300],
        outcome=outcome,
        reason=reason,
        detail=dict(detail or {}),
    )


def record(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    outcome: str = "ok",
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event to `session`: it commits (or rolls back) with the session's work."""
    event = _event(actor, action, target, outcome, reason, detail)
    session.add(event)
    within = current()
    if within is not None and actor not in SYSTEM_ACTORS:
        within.written.append(event)
    return event


def record_in(
    db: Database,
    actor: str,
    action: str,
    target: str = "",
    outcome: str = "ok",
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write an event in a transaction of its own (a refusal, or an action whose own
    work is already committed). A failure to write it is logged, never raised: the
    action's outcome stands."""
    try:
        with db.session() as session:
            record(session, actor, action, target, outcome, reason, detail)
    except Exception:
        log.exception("could not write the audit event %s %s", action, outcome)


def events(
    session: Session,
    *,
    since: datetime | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Events newest first; `action` matches exactly or as a prefix ("key" or "key."),
    `actor` exactly ("user:<id>", "key:<id>", "cli:root").

    ValueError for a `since` that UTC cannot hold (9999-12-31T23:59:59-23:59 is in
    the year 10000 there), the zone events are stored in."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if since is not None:
        query = query.where(AuditEvent.created_at >= utc(since))
    if action:
        prefix = action.rstrip(".")
        query = query.where(
            (AuditEvent.action == prefix) | AuditEvent.action.startswith(prefix + ".")
        )
    if actor:
        query = query.where(AuditEvent.actor == actor)
    return list(session.scalars(query))


def utc(moment: datetime) -> datetime:
    """A moment in UTC (naive: UTC already); ValueError if it is past the year 9999 there."""
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is out of range once converted to UTC") from None


def as_dict(event: AuditEvent) -> dict[str, Any]:
    """An event as the CLI's --json and the admin API show it."""
    return {
        "id": event.id,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "reason": event.reason,
        "detail": event.detail or {},
    }


def value_hash(value: Any) -> str:
    """A short, stable digest of a non-secret setting's value: enough to tell that it
    changed, without writing the value into the trail."""
    blob = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def record_settings(db: Database, hashes: dict[str, str], actor: str = SERVER) -> AuditEvent | None:
    """Compare the non-secret settings' digests (name -> value_hash) with those of the
    previous start; record which names changed (or the first start). None: nothing
    changed, nothing written."""
    with db.session() as session:
        previous = session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == SETTINGS_ACTION)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
        before: dict[str, str] = dict((previous.detail or {}).get("hashes", {})) if previous else {}
        if previous is not None and before == hashes:
            return None
        changed = sorted(k for k in hashes.keys() | before.keys() if hashes.get(k) != before.get(k))
        fingerprint = value_hash(sorted(hashes.items()))
        detail: dict[str, Any] = {
            "fingerprint": fingerprint,
            "first": previous is None,
            "changed": [] if previous is None else changed,
            "hashes": hashes,
        }
        event = record(session, actor, SETTINGS_ACTION, fingerprint, detail=detail)
        session.flush()
        session.expunge(event)
        return event
