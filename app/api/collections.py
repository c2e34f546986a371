"""Collections over HTTP: the ones a caller may read (the page's picker), and an admin's
create, grant, revoke (readers and owners) and delete (the same calls as `docchat
collections`, audited). What owners themselves do is in app/api/owned.py."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.access.collections import Collections, CollectionView
from app.api.deps import ComponentsDep, IdentityDep, actor_of, admin_scope, require_scope
from app.api.errors import ERROR_RESPONSES
from app.store.collections import ReaderKind


class CollectionOut(BaseModel):
    """A collection the caller may read."""

    name: str
    title: str
    description: str
    default: bool = Field(description="What a question without a collection asks.")
    model: str = Field(description='Its model id in the OpenAI API ("docchat/<name>").')
    owned: bool = Field(
        False,
        description="Whether the caller owns it: may upload into it and manage its sources "
        "(/api/collections/<name>/..., the page /collections).",
    )


class ReaderOut(BaseModel):
    """Who may read a collection."""

    kind: str = Field(description="everyone, group, user or key.")
    subject: str = Field(description="A group's name, a user's or key's id (\"*\": everyone).")
    label: str = Field(description="What a person or key is known by (e-mail, key name).")
    granted_at: str
    granted_by: str


class CollectionAdminOut(BaseModel):
    """A collection as an admin sees it."""

    name: str
    title: str
    description: str
    created_at: str
    created_by: str
    documents: int
    readers: list[ReaderOut]
    owners: list[ReaderOut] = Field(
        description="Who may fill it without being an admin: upload, its sources, its runs."
    )


class CollectionIn(BaseModel):
    """A new collection."""

    name: str = Field(min_length=3, max_length=63)
    title: str = Field("", max_length=200)
    description: str = Field("", max_length=1000)
    everyone: bool = Field(False, description="Readable by everyone who may chat.")


class ReaderIn(BaseModel):
    """A reader to grant or revoke."""

    kind: ReaderKind
    who: str = Field(
        "",
        max_length=320,
        description="A group's name, a user's id, user name or e-mail, a key's id or name "
        "(empty for everyone).",
    )


class OwnerIn(BaseModel):
    """An owner to grant."""

    kind: Literal["group", "user", "key"]
    who: str = Field(
        min_length=1,
        max_length=320,
        description="A group's name, a user's id, user name or e-mail, a key's id or name.",
    )


class DeletedCollection(BaseModel):
    """What deleting a collection removed."""

    deleted: str
    documents: int


router = APIRouter(prefix="/api", tags=["collections"], dependencies=[require_scope("chat")])
admin = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=admin_scope())


@router.get("/collections", responses=ERROR_RESPONSES)
async def readable_collections(
    components: ComponentsDep, identity: IdentityDep
) -> list[CollectionOut]:
    """The collections the caller may read, the default first, each saying whether
    the caller owns it."""
    found = await asyncio.to_thread(components.access.readable, identity)
    owned = await asyncio.to_thread(components.access.owned, identity)
    return [
        CollectionOut(
            name=c.name,
            title=c.title or c.name,
            description=c.description,
            default=c.default,
            model=f"docchat/{c.name}",
            owned=c.name in owned,
        )
        for c in found
    ]


def _out(view: CollectionView) -> CollectionAdminOut:
    return CollectionAdminOut.model_validate(view.as_dict())


@admin.get("/collections", responses=ERROR_RESPONSES)
def list_collections(components: ComponentsDep) -> list[CollectionAdminOut]:
    """Every registered collection with its readers and document count."""
    return [_out(v) for v in Collections(components.db).list()]


@admin.post("/collections", status_code=201, responses=ERROR_RESPONSES)
def create_collection(
    body: CollectionIn, components: ComponentsDep, identity: IdentityDep
) -> CollectionAdminOut:
    """Register a collection: admins only read it until readers are granted."""
    view = Collections(components.db).create(
        body.name,
        title=body.title,
        description=body.description,
        everyone=body.everyone,
        actor=actor_of(identity),
    )
    return _out(view)


@admin.get("/collections/{name}", responses=ERROR_RESPONSES)
def show_collection(name: str, components: ComponentsDep) -> CollectionAdminOut:
    """One collection with its readers."""
    return _out(Collections(components.db).show(name))


@admin.post("/collections/{name}/readers", responses=ERROR_RESPONSES)
def grant(
    name: str, body: ReaderIn, components: ComponentsDep, identity: IdentityDep
) -> CollectionAdminOut:
    """Let a reader read the collection, from its next request on."""
    collections = Collections(components.db)
    collections.grant(name, body.kind, body.who, actor=actor_of(identity))
    return _out(collections.show(name))


@admin.delete("/collections/{name}/readers/{kind}", responses=ERROR_RESPONSES)
def revoke(
    name: str,
    kind: ReaderKind,
    components: ComponentsDep,
    identity: IdentityDep,
    who: str = "",
) -> CollectionAdminOut:
    """Take a reader's access away (`who` as a query parameter), from its next request
    on: its people lose the collection's answers, documents and conversations."""
    collections = Collections(components.db)
    collections.revoke(name, kind, who, actor=actor_of(identity))
    return _out(collections.show(name))


@admin.get("/collections/{name}/owners", responses=ERROR_RESPONSES)
def list_owners(name: str, components: ComponentsDep) -> list[ReaderOut]:
    """Who owns the collection: may upload into it, change and sync its sources, and
    see its runs, without being an admin."""
    view = Collections(components.db).show(name)
    return [ReaderOut.model_validate(o.as_dict()) for o in view.owners]


@admin.post("/collections/{name}/owners", responses=ERROR_RESPONSES)
def grant_owner(
    name: str, body: OwnerIn, components: ComponentsDep, identity: IdentityDep
) -> CollectionAdminOut:
    """Make a group, a person or a key an owner of the collection (owners read it too),
    from its next request on."""
    collections = Collections(components.db)
    collections.grant_owner(name, body.kind, body.who, actor=actor_of(identity))
    return _out(collections.show(name))


@admin.delete("/collections/{name}/owners/{kind}", responses=ERROR_RESPONSES)
def revoke_owner(
    name: str,
    kind: Literal["group", "user", "key"],
    who: str,
    components: ComponentsDep,
    identity: IdentityDep,
) -> CollectionAdminOut:
    """Take an owner's rights away (`who` as a query parameter), from its next request."""
    collections = Collections(components.db)
    collections.revoke_owner(name, kind, who, actor=actor_of(identity))
    return _out(collections.show(name))


@admin.delete("/collections/{name}", responses=ERROR_RESPONSES)
def delete_collection(
    name: str, components: ComponentsDep, identity: IdentityDep
) -> DeletedCollection:
    """Delete a collection with its documents, vectors and readers (conversations stay
    for their retention, readable by admins only)."""
    counts = Collections(components.db).delete(
        name,
        components.vectors,
        components.settings.data_dir / "lexical",
        actor=actor_of(identity),
    )
    components.retrievers.forget(name)
    return DeletedCollection(deleted=name, documents=counts["documents"])
