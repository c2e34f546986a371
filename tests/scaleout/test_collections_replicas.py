"""Collections with readers on the scale-out stores: two `docchat serve` replicas on
PostgreSQL and a Chroma server, keys made and readers granted and revoked by the real
CLI, each change seen by both replicas from the next request."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import httpx

from tests.conftest import CORPUS, docchat_serve
from tests.scaleout.test_serve_and_ingest import cli, docchat_env
from tests.servers import ChromaServer, PostgresServer

SECRET = "ZEPHYR-7731"
SALES = f"# Renewal discounts\n\nThe quartermaster discount code is {SECRET}.\n"
ASK = "What is the quartermaster discount code?"


def key_from(done: object) -> str:
    out = getattr(done, "stdout", "").strip().splitlines() or [""]
    assert out[-1].startswith("dck_"), done
    return out[-1]


def asked(base: str, key: str, collection: str | None) -> httpx.Response:
    return httpx.post(
        f"{base}/api/chat",
        json={"question": ASK, "stream": False, "collection": collection},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )


def test_grants_and_key_limits_hold_on_every_replica(
    tmp_path: Path, postgres: PostgresServer, chroma_server: ChromaServer
) -> None:
    env = docchat_env(
        tmp_path / "data",
        vectors__url=chroma_server.url,
        vectors__collection="replicas-docs",
        database__url=postgres.new_database(),
        security__auth_enabled="true",
    )
    (tmp_path / "sales").mkdir()
    (tmp_path / "sales" / "sales.md").write_text(SALES)
    assert cli(env, "ingest", str(CORPUS)).returncode in (0, 3)  # it holds broken files
    sales = cli(env, "ingest", str(tmp_path / "sales"), "--collection", "replicas-sales")
    assert sales.returncode == 0, sales.stderr
    assert "admins only read it" in sales.stdout + sales.stderr
    plain = key_from(cli(env, "keys", "create", "--name", "plain", "--scope", "chat"))
    limited = key_from(
        cli(
            env,
            *("keys", "create", "--name", "sales-bot", "--scope", "chat"),
            *("--collection", "replicas-sales"),
        )
    )
    listed = cli(env, "keys", "list", "--json")
    assert '"collections": "replicas-sales"' in listed.stdout

    with ExitStack() as replicas:
        bases = [
            replicas.enter_context(docchat_serve(env, tmp_path / f"replica-{i}.log")).base
            for i in (1, 2)
        ]
        for base in bases:
            assert asked(base, plain, "replicas-sales").status_code == 404
            answer = asked(base, limited, "replicas-sales")
            assert answer.status_code == 200, answer.text
            assert {c["source"] for c in answer.json()["citations"]} == {"sales/sales.md"}
            assert asked(base, limited, None).status_code == 404  # not the default one

        granted = cli(env, "collections", "grant", "replicas-sales", "key", "plain")
        assert granted.returncode == 0, granted.stderr
        for base in bases:
            assert asked(base, plain, "replicas-sales").status_code == 200

        revoked = cli(env, "collections", "revoke", "replicas-sales", "key", "plain")
        assert revoked.returncode == 0, revoked.stderr
        for base in bases:
            refused = asked(base, plain, "replicas-sales")
            assert refused.status_code == 404
            assert SECRET not in refused.text
    shown = json.loads(cli(env, "collections", "show", "replicas-sales").stdout)
    assert shown["readers"] == []
    assert shown["documents"] == 1
