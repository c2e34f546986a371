"""Collections with readers, end to end: people signed in through the real OpenID
provider and keys limited to collections read only what they are granted, in every
way there is to read it.

The leak probe: a phrase that exists only in the sales collection is asked for by a
person of the support group through the chat (in every collection she may read, and
naming the sales one), the OpenAI API, the document pages, citations, an admin's
conversation in that collection (read, continued, rated), and the export; it never
appears in anything she is sent.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from app.access.collections import Collections
from app.components import Components, build_components
from app.main import create_app
from app.settings import Settings
from app.store.models import Document
from tests.auth.conftest import Ports, audit_events, metric, oidc_settings, sign_in
from tests.auth.provider import Provider
from tests.conftest import CORPUS, Models, bearer, make_settings
from tests.sse import parse_sse

# Only in the sales collection: the probe looks for any of these words anywhere.
SECRET = "ZEPHYR-7731"
SALES_DOC = f"""# Renewal discounts

Account managers offer the quartermaster discount on renewals of three years or more.
The quartermaster discount code is {SECRET}; enter it in the renewal form's promotion
field before the quote is sent.
"""
SUPPORT_DOC = """# Escalation runbook

When a customer reports a data loss, page the duty engineer through the incident
bridge and open a severity-one ticket within fifteen minutes.
"""
ASK = "What is the quartermaster discount code for renewals?"


@dataclass
class Deployment:
    components: Components
    client: TestClient
    sales_doc: str  # the sales document's id


def ingest(settings: Any, models: Models, collection: str, folder: Path) -> None:
    from app.components import open_ingestor

    with open_ingestor(settings, embedder=models.embedder) as ingestor:
        ingestor.run([folder], collection)


def three_collections(root: Path, models: Models, ports: Ports) -> tuple[Components, Settings]:
    """A server's components over three collections: docs (everyone), sales-playbook
    (group sales) and support-runbooks (group support), with sign-in configured for the
    test provider."""
    for name, text in (("sales", SALES_DOC), ("support", SUPPORT_DOC)):
        (root / name).mkdir()
        (root / name / f"{name}.md").write_text(text)
    shutil.copytree(CORPUS, root / "docs")
    settings = make_settings(root / "data")
    ingest(settings, models, "docs", root / "docs")
    ingest(settings, models, "sales-playbook", root / "sales")
    ingest(settings, models, "support-runbooks", root / "support")
    settings = oidc_settings(settings, f"http://127.0.0.1:{ports.provider}")
    components = build_components(settings, embedder=models.embedder, engine=models.engine)
    collections = Collections(components.db)
    collections.ensure("sales-playbook", everyone=False, actor="cli")
    collections.ensure("support-runbooks", everyone=False, actor="cli")
    collections.grant("sales-playbook", "group", "sales")
    collections.grant("support-runbooks", "group", "support")
    return components, settings


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, models: Models, ports: Ports, provider: Provider
) -> Iterator[Deployment]:
    components, settings = three_collections(tmp_path_factory.mktemp("collections"), models, ports)
    with components.db.session() as session:
        sales_doc = session.query(Document).filter_by(collection="sales-playbook").one().id
    with TestClient(create_app(settings, components), follow_redirects=False) as client:
        yield Deployment(components, client, sales_doc)
    components.close()


@pytest.fixture(scope="module")
def alice(provider: Provider) -> dict[str, str]:
    """Support: reads docs (everyone) and support-runbooks."""
    return bearer(provider.tool_token("alice"))


@pytest.fixture(scope="module")
def bob(provider: Provider) -> dict[str, str]:
    """Sales and an admin."""
    return bearer(provider.tool_token("bob"))


def chat(client: TestClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return client.post("/api/chat", json={"stream": False, **body}, headers=headers)


def test_each_person_lists_the_collections_they_may_read(
    deployment: Deployment, alice: dict[str, str], bob: dict[str, str]
) -> None:
    client = deployment.client
    mine = [c["name"] for c in client.get("/api/collections", headers=alice).json()]
    assert mine == ["docs", "support-runbooks"]
    every = [c["name"] for c in client.get("/api/collections", headers=bob).json()]
    assert every == ["docs", "sales-playbook", "support-runbooks"]  # an admin reads all
    models = [m["id"] for m in client.get("/v1/models", headers=alice).json()["data"]]
    assert "docchat/support-runbooks" in models
    assert "docchat/sales-playbook" not in models


def test_the_phrase_of_another_group_never_reaches_a_reader(
    deployment: Deployment, alice: dict[str, str], bob: dict[str, str]
) -> None:
    client = deployment.client
    # The admin has a conversation in the sales collection: its answer quotes the code.
    theirs = chat(client, bob, question=ASK, collection="sales-playbook")
    assert theirs.status_code == 200, theirs.text
    assert SECRET in json.dumps(theirs.json()), "the phrase must be findable by a reader"
    conversation, message = theirs.json()["conversation_id"], theirs.json()["message_id"]

    sent: list[httpx.Response] = []

    def probe(response: httpx.Response) -> httpx.Response:
        sent.append(response)
        return response

    # The chat: naming the collection, and in each one she may read.
    refused = probe(chat(client, alice, question=ASK, collection="sales-playbook"))
    assert refused.status_code == 404
    assert refused.json()["error"]["type"] == "collection_not_found"
    for collection in (None, "docs", "support-runbooks"):
        asked = probe(chat(client, alice, question=ASK, collection=collection))
        assert asked.status_code == 200, asked.text
        cited = {c["document_id"] for c in asked.json()["citations"]}
        assert deployment.sales_doc not in cited
    streamed = probe(
        client.post(
            "/api/chat",
            json={"question": ASK, "collection": "support-runbooks"},
            headers=alice,
        )
    )
    assert [e for e, _ in parse_sse(streamed.text.splitlines())][-1] == "done"
    # The OpenAI API: by model id, listed or not.
    body = {"messages": [{"role": "user", "content": ASK}], "max_tokens": 48}
    for model, status in (
        ("docchat/sales-playbook", 404),
        ("docchat/support-runbooks", 200),
        ("docchat", 200),
    ):
        answered = probe(
            client.post("/v1/chat/completions", json={"model": model, **body}, headers=alice)
        )
        assert answered.status_code == status, (model, answered.text)
    # The document a citation would link to, and its page's data.
    assert (
        probe(client.get(f"/api/documents/{deployment.sales_doc}", headers=alice)).status_code
        == 404
    )
    # The admin's conversation: read, listed, continued, rated.
    assert probe(client.get(f"/api/conversations/{conversation}", headers=alice)).status_code == 404
    listed = probe(client.get("/api/conversations", headers=alice))
    assert conversation not in listed.text
    continued = probe(
        chat(client, alice, question="And for two years?", conversation_id=conversation)
    )
    assert continued.status_code == 404
    rated = probe(
        client.post(f"/api/messages/{message}/feedback", json={"rating": "up"}, headers=alice)
    )
    assert rated.status_code == 404
    # The export and the review queue are an admin's.
    for path in ("/api/admin/feedback", "/api/admin/collections"):
        assert probe(client.get(path, headers=alice)).status_code == 403

    # The code, and words of the passage the question does not hold.
    leaked = [r.request.url.path for r in sent if SECRET in r.text or "promotion field" in r.text]
    assert not leaked, f"the sales phrase reached a support reader through {leaked}"
    refusals = metric(client, "docchat_auth_refusals_total", "reason", "collection_not_readable")
    assert refusals >= 3  # the chat, the OpenAI API, the document (the rest are not hers)


def test_a_key_limited_to_one_collection_reads_that_one_alone(deployment: Deployment) -> None:
    client = deployment.client
    keys = deployment.components.guards.keys
    limited = bearer(keys.create("support-tool", "chat", collections=["support-runbooks"]))
    admin_limited = bearer(keys.create("support-admin", "admin", collections=["support-runbooks"]))
    for headers in (limited, admin_limited):
        names = [c["name"] for c in client.get("/api/collections", headers=headers).json()]
        assert names == ["support-runbooks"]
        for collection in ("sales-playbook", "docs"):
            refused = chat(client, headers, question=ASK, collection=collection)
            assert refused.status_code == 404, refused.text
        # Without a collection, a question asks the default one: not this key's either.
        assert chat(client, headers, question=ASK).status_code == 404
        answered = chat(
            client,
            headers,
            question="How fast is a data loss escalated?",
            collection="support-runbooks",
        )
        assert answered.status_code == 200
        assert SECRET not in answered.text
    with pytest.raises(ValueError, match="no collection named 'nope'"):
        keys.create("bad-limit", "chat", collections=["nope"])


def test_grants_and_revocations_count_from_the_next_request_and_are_audited(
    deployment: Deployment, alice: dict[str, str]
) -> None:
    client = deployment.client
    collections = Collections(deployment.components.db)
    mine = chat(
        client, alice, question="How fast is a data loss escalated?", collection="support-runbooks"
    )
    assert mine.status_code == 200
    conversation = mine.json()["conversation_id"]
    assert client.get(f"/api/conversations/{conversation}", headers=alice).status_code == 200

    collections.revoke("support-runbooks", "group", "support")
    try:
        gone = chat(
            client,
            alice,
            question="How fast is a data loss escalated?",
            collection="support-runbooks",
        )
        assert gone.status_code == 404
        # Her history in it goes with the collection, though she still owns it.
        assert client.get(f"/api/conversations/{conversation}", headers=alice).status_code == 404
        assert conversation not in client.get("/api/conversations", headers=alice).text
        # Her newest conversation is the hidden one: the list's one place goes to the
        # newest she still reads (she asked in docs in the probe above).
        newest = client.get("/api/conversations", params={"limit": 1}, headers=alice).json()
        assert [c["collection"] for c in newest] == ["docs"]
    finally:
        collections.grant("support-runbooks", "group", "support")
    assert client.get(f"/api/conversations/{conversation}", headers=alice).status_code == 200
    actions = {e["action"] for e in audit_events(deployment.components, "collection")}
    assert {"collection.grant", "collection.revoke", "collection.create"} <= actions


def test_a_group_removed_at_the_provider_takes_its_collections_with_it(
    deployment: Deployment, provider: Provider
) -> None:
    """Moved out of support at the provider: her next token reads the default
    collection alone (her groups come from the provider, not from docchat's copy)."""
    client = deployment.client
    provider.set_groups("alice", [])
    try:
        token = bearer(provider.tool_token("alice"))
        names = [c["name"] for c in client.get("/api/collections", headers=token).json()]
        assert names == ["docs"]
        question = "How fast is a data loss escalated?"
        refused = chat(client, token, question=question, collection="support-runbooks")
        assert refused.status_code == 404
    finally:
        provider.set_groups("alice", ["support"])
    again = bearer(provider.tool_token("alice"))
    assert chat(client, again, question=question, collection="support-runbooks").status_code == 200


def test_every_admin_route_refuses_a_reader_and_the_trail_exports_as_csv(
    deployment: Deployment, alice: dict[str, str], bob: dict[str, str]
) -> None:
    """The console's data is the admin API's: each route under /api/admin answers 403
    to a person without the admin role (GET and changes alike); an admin exports the
    audit trail as CSV, filtered by who did what."""
    client = deployment.client
    routes = [
        (method, route.path)
        for route in iter_route_contexts(deployment.client.app.routes)  # type: ignore[attr-defined]
        if route.path.startswith("/api/admin")
        for method in route.methods or ()
    ]
    assert len(routes) > 30
    for method, template in routes:
        path = template.replace("{", "").replace("}", "")  # any value: refused before
        status = client.request(method, path, headers=alice).status_code
        assert status == 403, (method, template, status)
    exported = client.get("/api/admin/audit.csv", params={"action": "collection"}, headers=bob)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0] == "id,created_at,actor,action,target,outcome,reason,detail"
    assert any(",collection.grant,sales-playbook," in line for line in lines[1:])


def test_a_person_granted_by_e_mail_reads_the_collection(
    deployment: Deployment, alice: dict[str, str], provider: Provider
) -> None:
    """Her e-mail comes with a page sign-in (an access token need not carry it); her
    tokens are the same person."""
    client = deployment.client
    collections = Collections(deployment.components.db)
    assert sign_in(client, provider, "alice").status_code == 303
    client.cookies.clear()  # from here on, her bearer token alone
    reader = collections.grant("sales-playbook", "user", "alice@example.com")
    try:
        assert reader.kind == "user"
        assert reader.label == "alice@example.com"
        names = [c["name"] for c in client.get("/api/collections", headers=alice).json()]
        assert "sales-playbook" in names
    finally:
        collections.revoke("sales-playbook", "user", "alice@example.com")
    names = [c["name"] for c in client.get("/api/collections", headers=alice).json()]
    assert "sales-playbook" not in names


def _upload(client: TestClient, headers: dict[str, str], collection: str) -> httpx.Response:
    page = ("note.md", b"# Handover\n\nThe night shift hands over at six through the bridge.\n")
    return client.post(
        f"/api/collections/{collection}/documents", files={"files": page}, headers=headers
    )


def _owned(client: TestClient, headers: dict[str, str]) -> dict[str, bool]:
    """What GET /api/collections says the caller owns (the chat page's link)."""
    return {c["name"]: c["owned"] for c in client.get("/api/collections", headers=headers).json()}


def test_an_owner_fills_her_collection_and_touches_no_other(
    deployment: Deployment, alice: dict[str, str], bob: dict[str, str], tmp_path: Path
) -> None:
    """Support owns support-runbooks: alice (support, not an admin) uploads into it, adds
    and syncs a git source and reads its runs; she cannot touch sales-playbook (not
    hers to read: 404) or docs (she reads it: 403); a key that only reads
    support-runbooks cannot upload; every change is audited as hers."""
    from tests.sources.servers import git, git_server

    client = deployment.client
    collections = Collections(deployment.components.db)
    reader_key = bearer(deployment.components.guards.keys.create("runbook-reader", "chat"))
    collections.grant("support-runbooks", "key", "runbook-reader")
    assert _upload(client, alice, "support-runbooks").status_code == 403  # not yet an owner
    granted = client.post(
        "/api/admin/collections/support-runbooks/owners",
        json={"kind": "group", "who": "support"},
        headers=bob,
    )
    assert granted.status_code == 200, granted.text
    assert [o["subject"] for o in granted.json()["owners"]] == ["support"]
    assert _owned(client, alice) == {"docs": False, "support-runbooks": True}
    repo = tmp_path / "served"
    work = tmp_path / "work"
    repo.mkdir()
    work.mkdir()
    git(repo, "init", "-q", "--bare", "-b", "main", "wiki.git")
    git(work, "init", "-q", "-b", "main")
    (work / "pager.md").write_text("# Pager\n\nThe pager rotation changes every Monday noon.\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "pager")
    git(work, "push", "-q", str(repo / "wiki.git"), "main")
    try:
        uploaded = _upload(client, alice, "support-runbooks")
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["new"] == 1
        assert _upload(client, alice, "sales-playbook").status_code == 404
        assert _upload(client, alice, "docs").status_code == 403
        assert _upload(client, reader_key, "support-runbooks").status_code == 403
        assert (
            client.get("/api/collections/support-runbooks/sources", headers=reader_key).status_code
            == 403
        )
        with git_server(repo) as server:
            source = {
                "name": "support-wiki",
                "kind": "git",
                "config": {"url": f"{server.url}/wiki.git"},
            }
            base = "/api/collections/support-runbooks/sources"
            added = client.post(base, json=source, headers=alice)
            assert added.status_code == 201, added.text
            assert added.json()["collection"] == "support-runbooks"
            for refused, status in (
                ({**source, "name": "x", "kind": "folder", "config": {"path": "/etc"}}, 422),
                ({**source, "name": "y", "config": {"url": "file:///etc/repo.git"}}, 403),
                (
                    {
                        **source,
                        "name": "z",
                        "config": {"url": "https://h.test/r", "credential": "c"},
                    },
                    403,
                ),
            ):
                assert client.post(base, json=refused, headers=alice).status_code == status
            assert (
                client.post(
                    "/api/collections/sales-playbook/sources", json=source, headers=alice
                ).status_code
                == 404
            )
            assert client.post(f"{base}/support-wiki/sync", headers=alice).status_code == 202
            deadline = time.monotonic() + 60
            while (shown := client.get(f"{base}/support-wiki", headers=alice).json())[
                "last_status"
            ] in (None, "running"):
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert shown["last_status"] == "completed", shown
        assert shown["last_counts"]["added"] == 1
        # Another collection's path does not reach the source.
        assert (
            client.get("/api/collections/docs/sources/support-wiki", headers=bob).status_code == 404
        )
        runs = client.get("/api/collections/support-runbooks/runs", headers=alice).json()
        assert {r["collection"] for r in runs} == {"support-runbooks"}
        assert len(runs) >= 2  # the upload and the sync
        removed = client.delete(f"{base}/support-wiki", headers=alice)
        assert removed.json() == {"removed": "support-wiki", "documents_removed": 1}
    finally:
        revoked = client.delete(
            "/api/admin/collections/support-runbooks/owners/group",
            params={"who": "support"},
            headers=bob,
        )
        assert revoked.status_code == 200
        collections.revoke("support-runbooks", "key", "runbook-reader")
    assert _upload(client, alice, "support-runbooks").status_code == 403  # from now on
    assert _owned(client, alice) == {"docs": False, "support-runbooks": False}
    trail = audit_events(deployment.components, "api")
    mine = {e["action"] for e in trail if str(e["actor"]).startswith("user:")}
    assert {
        "api.upload_to_collection",
        "api.add_owned_source",
        "api.sync_owned_source",
        "api.remove_owned_source",
    } <= mine
    owners = {e["action"] for e in audit_events(deployment.components, "collection")}
    assert {"collection.grant_owner", "collection.revoke_owner"} <= owners
