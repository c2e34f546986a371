"""Models as versioned releases, with real GGUF files: the registry, the promotion
gate's refusals, a hot swap while an answer streams, and rollback.

The variants are made from the installed SmolLM2 file: a requantized copy (Q8_0, a
different real model file that answers alike), a copy without its chat template and a
"blind" copy whose template never shows the model the question (both with gguf's own
metadata tool: real files that llama.cpp runs, one that cannot chat and one that
answers worse), a truncated copy, and a copy with one byte changed.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import llama_cpp as ll
import pytest
from pydantic import SecretStr

from app.chat.events import Release
from app.components import Components, active_model, load_model
from app.llm.base import CannotChat
from app.llm.hosting import SwappableEngine
from app.llm.provision import small_chat_model
from app.main import create_app
from app.releases.errors import GateRefused, ModelFileChanged, RegistryError
from app.releases.gate import Gate
from app.releases.registry import Registry
from app.settings import GateSet, Settings
from app.store.db import Database
from app.store.models import Message
from tests.conftest import FIXTURES, free_port, make_settings, run_docchat, serve_in_thread
from tests.sse import parse_sse

QUESTION = "What port does the widget server listen on by default?"
# A chat template that drops every message: the model answers without the question.
BLIND_TEMPLATE = "<|im_start|>user\nTell me about widgets.<|im_end|>\n<|im_start|>assistant\n"


@dataclass
class Variants:
    """Real model files made from the installed SmolLM2."""

    original: Path
    q8: Path
    no_template: Path
    blind: Path
    truncated: Path


@pytest.fixture(scope="session")
def variants(tmp_path_factory: pytest.TempPathFactory) -> Variants:
    folder = tmp_path_factory.mktemp("model-files")
    original = folder / "smollm2.gguf"
    shutil.copyfile(small_chat_model(), original)
    q8 = folder / "smollm2-q8_0.gguf"
    params = ll.llama_model_quantize_default_params()
    params.ftype = ll.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = 2
    assert (
        ll.llama_model_quantize(str(original).encode(), str(q8).encode(), ctypes.byref(params)) == 0
    )
    tool = str(Path(sys.executable).parent / "gguf-new-metadata")
    no_template = folder / "smollm2-no-template.gguf"
    subprocess.run(
        [
            tool,
            "--force",
            "--remove-metadata",
            "tokenizer.chat_template",
            str(original),
            str(no_template),
        ],
        check=True,
        capture_output=True,
    )
    blind = folder / "smollm2-blind.gguf"
    subprocess.run(
        [tool, "--force", "--chat-template", BLIND_TEMPLATE, str(original), str(blind)],
        check=True,
        capture_output=True,
    )
    truncated = folder / "smollm2-truncated.gguf"
    truncated.write_bytes(original.read_bytes()[: 5 * 2**20])
    return Variants(original, q8, no_template, blind, truncated)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    db.migrate()
    yield Registry(db)
    db.close()


def test_add_list_show_activate_and_roll_back(registry: Registry, variants: Variants) -> None:
    first = registry.seed(variants.original, name="smollm2")
    assert first.active
    assert first.architecture == "llama"
    assert first.quantization == "Q4_1"
    assert first.chat_template
    assert first.parameters is not None
    assert 130e6 < first.parameters < 140e6
    second = registry.add_model(variants.q8, name="smollm2-q8")
    assert second.quantization == "Q8_0"
    assert second.sha256 != first.sha256
    assert [e.name for e in registry.models()] == ["smollm2", "smollm2-q8"]
    assert registry.activate("smollm2-q8", actor="test").active
    assert registry.active_name() == "smollm2-q8"
    assert registry.rollback(actor="test").name == "smollm2"
    # A rollback is undone by activating again, and the history says what happened.
    registry.activate("smollm2-q8", actor="test")
    assert [a.action for a in registry.history()] == ["seed", "activate", "rollback", "activate"]
    assert registry.rollback(actor="test").name == "smollm2"
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(actor="test")
    with pytest.raises(RegistryError, match="registered already"):
        registry.add_model(variants.q8, name="again")
    with pytest.raises(RegistryError, match="no model named 'nope'"):
        registry.model("nope")


def test_a_changed_file_is_refused(registry: Registry, variants: Variants, tmp_path: Path) -> None:
    copy = tmp_path / "model.gguf"
    shutil.copyfile(variants.original, copy)
    registry.add_model(copy, name="m")
    with copy.open("r+b") as handle:  # one byte of the weights, far from the header
        handle.seek(50 * 2**20)
        byte = handle.read(1)
        handle.seek(50 * 2**20)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelFileChanged, match="changed since it was registered"):
        registry.activate("m", actor="test")
    copy.unlink()
    with pytest.raises(ModelFileChanged, match="is missing"):
        registry.verify(registry.model("m"))


def test_files_that_cannot_chat_are_refused(registry: Registry, variants: Variants) -> None:
    with pytest.raises(RegistryError, match="cannot read it as a model"):
        registry.add_model(variants.truncated, name="cut")
    entry = registry.add_model(variants.no_template, name="base")
    assert not entry.chat_template
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(CannotChat, match="no chat template"):
        load_model(settings, entry)
    gate = Gate(settings.models, registry, *[lambda *a: pytest.fail("not measured")] * 3)
    assert gate.reasons("model", "base") == [
        "it has no chat template: an instruction-tuned model is needed"
    ]
    with pytest.raises(GateRefused, match="model 'base' refused: it has no chat template"):
        gate.activate("model", "base", actor="test", evaluate=False)


def report(expected: float, p95: float, **labels: float) -> dict[str, object]:
    answers: dict[str, object] = labels | {
        "expected": expected,
        "grounded": 0.5,
        "cited": 0.9,
        "false_refusals": 0.1,
        "refused_out_of_scope": 1.0,
        "errors": 0,
        "first_token_p95_s": p95 / 2,
        "total_p95_s": p95,
    }
    return {"sets": [{"file": "eval/docs_qa.jsonl", "collection": "docs", "answers": answers}]}


def test_a_release_is_named_by_its_files_short_hashes() -> None:
    model, adapter = "1d9614638d18" + "0" * 52, "4be0c2a19f3e" + "1" * 52
    assert Release("qwen", model).fingerprint == "fp_1d9614638d18"
    both = Release("qwen+support", model, adapter)
    assert both.fingerprint == "fp_1d9614638d18-4be0c2a19f3e"
    assert both.as_dict() == {
        "model": "qwen+support",
        "model_sha256": "1d9614638d18",
        "adapter_sha256": "4be0c2a19f3e",
    }
    assert Release("served-elsewhere").fingerprint is None  # a model server's file


def test_the_gate_compares_set_by_set(registry: Registry) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    compare = Gate(settings.models, registry, *[lambda *a: pytest.fail("not measured")] * 3).compare
    assert compare(report(0.60, 10), report(0.62, 9)) == []  # within tolerance
    worse = compare(report(0.40, 10), report(0.62, 9))
    assert worse == ["docs_qa.jsonl: expected fell from 0.62 to 0.4"]
    slower = compare(report(0.62, 30), report(0.62, 10))
    assert slower == [
        "docs_qa.jsonl: total_p95_s rose from 10 s to 30 s",
        "docs_qa.jsonl: first_token_p95_s rose from 5 s to 15 s",
    ]
    # The grounding check on the set's hand labels: a release whose check flags fewer
    # wrong answers or more right ones is refused; a report from before the figures
    # existed (no such keys) is not compared on them.
    labelled = report(0.62, 10, labels_wrong_flagged=0.82, labels_right_flagged=0.19)
    check_worse = report(0.62, 10, labels_wrong_flagged=0.6, labels_right_flagged=0.3)
    assert compare(check_worse, labelled) == [
        "docs_qa.jsonl: labels_wrong_flagged fell from 0.82 to 0.6",
        "docs_qa.jsonl: labels_right_flagged rose from 0.19 to 0.3",
    ]
    assert compare(check_worse, report(0.62, 10)) == []


@pytest.fixture
def registry_server(
    components: Components, variants: Variants, tmp_path: Path
) -> Iterator[tuple[str, Components, Registry, SwappableEngine]]:
    """A live app over the corpus whose model comes from its own registry (SmolLM2
    active, its Q8_0 requantization registered beside it)."""
    db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    db.migrate()
    registry = Registry(db)
    base = components.settings
    settings = base.model_copy(
        update={
            "database": base.database.model_copy(
                update={"url": SecretStr(f"sqlite:///{tmp_path / 'registry.db'}")}
            ),
            "llm": base.llm.model_copy(update={"max_tokens": 160, "temperature": 0.7}),
        }
    )
    registry.seed(variants.original, name="smollm2")
    registry.add_model(variants.q8, name="smollm2-q8")
    engine = SwappableEngine(load_model(settings, active_model(settings, db)))
    served = components.using(settings=settings, db=db, engine=engine)
    served.warm()
    try:
        for base_url in serve_in_thread(create_app(settings, served)):
            yield base_url, served, registry, engine
    finally:
        engine.close()
        db.close()


def release_of(name: str, sha256: str) -> dict[str, str | None]:
    """The `release` an /api/chat answer carries for a model without an adapter."""
    return {"model": name, "model_sha256": sha256[:12], "adapter_sha256": None}


def stored_lineage(components: Components, message_id: str) -> tuple[str | None, str | None]:
    with components.db.session() as session:
        message = session.get_one(Message, message_id)
        return message.model, message.model_sha256


def test_hot_swap_while_an_answer_streams(
    registry_server: tuple[str, Components, Registry, SwappableEngine],
) -> None:
    base, served, registry, engine = registry_server
    old, new = registry.model("smollm2"), registry.model("smollm2-q8")
    first_engine = engine.current
    with httpx.Client(base_url=base, timeout=120) as client:
        lines = []
        with client.stream("POST", "/api/chat", json={"question": QUESTION}) as response:
            assert response.status_code == 200
            swapped = None
            for line in response.iter_lines():
                lines.append(line)
                if line == "event: token" and swapped is None:
                    # Mid-answer: put the other model in service (no gate: forced).
                    swapped = client.post(
                        "/api/admin/models/smollm2-q8/activate",
                        json={"evaluate": False, "force": True},
                    )
        assert swapped is not None
        assert swapped.status_code == 200, swapped.text
        assert swapped.json()["active"] is True
        events = parse_sse(lines)
        assert [name for name, _ in events][-1] == "done"  # finished on the old model
        done = events[-1][1]
        assert stored_lineage(served, done["message_id"]) == (old.name, old.sha256)
        # Each answer names the release that wrote it, as stored.
        assert done["release"] == release_of(old.name, old.sha256)
        # The next question starts on the new model, with nothing failed.
        after = client.post("/api/chat", json={"question": QUESTION, "stream": False})
        assert after.status_code == 200, after.text
        assert stored_lineage(served, after.json()["message_id"]) == (new.name, new.sha256)
        assert after.json()["release"] == release_of(new.name, new.sha256)
        # The OpenAI API names it as that API does, in the response and in every chunk.
        ask = {"model": "docchat", "messages": [{"role": "user", "content": QUESTION}]}
        whole = client.post("/v1/chat/completions", json={**ask, "max_tokens": 8}).json()
        assert whole["system_fingerprint"] == f"fp_{new.sha256[:12]}"
        with client.stream(
            "POST", "/v1/chat/completions", json={**ask, "max_tokens": 8, "stream": True}
        ) as streamed:
            chunks = [
                json.loads(line.removeprefix("data: "))
                for line in streamed.iter_lines()
                if line.startswith("data: {")
            ]
        assert len(chunks) > 2
        assert {c["system_fingerprint"] for c in chunks} == {f"fp_{new.sha256[:12]}"}
        models = client.get("/v1/models").json()["data"]
        assert models[0]["id"] == "smollm2-q8"
    assert engine.current is not first_engine
    deadline = time.monotonic() + 10
    while engine.retiring:  # the old model is closed once its answer ended
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert registry.history()[-1].forced


def test_rollback_through_the_api_and_the_gate_refuses_unmeasured(
    registry_server: tuple[str, Components, Registry, SwappableEngine],
) -> None:
    base, _served, _registry, engine = registry_server
    with httpx.Client(base_url=base, timeout=120) as client:
        refused = client.post("/api/admin/models/smollm2-q8/activate", json={"evaluate": False})
        assert refused.status_code == 409
        assert "has not been evaluated" in refused.json()["error"]["message"]
        assert engine.model_id == "smollm2"
        forced = client.post(
            "/api/admin/models/smollm2-q8/activate", json={"evaluate": False, "force": True}
        )
        assert forced.status_code == 200
        assert engine.model_id == "smollm2-q8"
        back = client.post("/api/admin/models/rollback")
        assert back.status_code == 200, back.text
        assert back.json()["name"] == "smollm2"
        assert engine.model_id == "smollm2"
        listed = {m["name"]: m["active"] for m in client.get("/api/admin/models").json()}
        assert listed == {"smollm2": True, "smollm2-q8": False}


def test_a_server_follows_an_activation_made_elsewhere(
    registry_server: tuple[str, Components, Registry, SwappableEngine],
) -> None:
    """Another replica, or `docchat models activate`, changes the registry: this server
    swaps within its poll interval, without a request to it."""
    _base, served, registry, engine = registry_server
    host = served.model_host()
    assert host is not None

    async def follow() -> None:
        registry.activate("smollm2-q8", actor="elsewhere", forced=True)
        await host.sync()  # what the server's poll loop runs

    asyncio.run(follow())
    assert engine.model_id == "smollm2-q8"


def test_the_gate_refuses_a_model_that_answers_worse(
    components: Components, variants: Variants, tmp_path: Path
) -> None:
    """The real measurement on the test corpus's question set: both models are asked
    every question, the reports are recorded, and the blind copy (which never sees the
    question) is refused for the answers it misses; --force overrides, on the record."""
    from app.releases.measure import measure_with

    db = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    db.migrate()
    registry = Registry(db)
    settings = components.settings.model_copy(
        update={
            "models": components.settings.models.model_copy(
                update={"gate_sets": [GateSet(file=FIXTURES / "corpus_qa.jsonl")]}
            )
        }
    )
    registry.seed(variants.original, name="smollm2")
    registry.add_model(variants.blind, name="blind")
    measure = measure_with(
        settings,
        lambda entry: load_model(settings, entry),
        lambda engine, collection: components.using(engine=engine),
    )
    gate = Gate(settings.models, registry, measure, *[lambda *a: pytest.fail("held out")] * 2)
    try:
        with pytest.raises(GateRefused) as refused:
            gate.activate("model", "blind", actor="test")
        assert any(
            p.startswith("corpus_qa.jsonl: expected fell from") for p in refused.value.reasons
        )
        assert registry.active_name() == "smollm2"
        baseline = registry.model("smollm2").eval_report
        assert baseline is not None
        answers = baseline["sets"][0]["answers"]
        assert answers["in_scope"] == 6
        assert answers["out_of_scope"] == 2
        assert answers["expected"] > 0  # SmolLM2 does find some: 7421, 02:30
        assert answers["total_p95_s"] > 0
        assert baseline["sets"][0]["retrieval"]["recall"] == 1.0
        blind = registry.model("blind").eval_report
        assert blind is not None
        assert blind["sets"][0]["answers"]["expected"] < answers["expected"]
        forced = gate.activate("model", "blind", actor="test", force=True, evaluate=False)
        assert forced.active
        assert registry.history()[-1].forced
        assert "expected fell" in registry.history()[-1].note
    finally:
        db.close()


def test_models_commands(variants: Variants, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(data),
        "DOCCHAT_SECRETS_DIR": str(tmp_path / "none"),
        "COLUMNS": "200",
    }
    # A fresh data folder: not an empty table, but what to do.
    fresh = run_docchat("models", "list", env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert "No chat model is registered yet" in fresh.stdout
    assert "docchat models pull" in fresh.stdout
    added = run_docchat("models", "add", str(variants.q8), "--name", "q8", env=env)
    assert added.returncode == 0, added.stderr
    assert "Q8_0" in added.stdout
    cut = run_docchat("models", "add", str(variants.truncated), env=env)
    assert cut.returncode == 1
    assert "cannot read it as a model" in cut.stderr
    assert "Traceback" not in cut.stderr
    listed = run_docchat("models", "list", "--json", env=env)
    assert [m["name"] for m in json.loads(listed.stdout)] == ["q8"]
    forced = run_docchat("models", "activate", "q8", "--no-evaluate", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert "active: q8" in forced.stdout
    shown = run_docchat("models", "show", env=env)
    assert "q8  (active)" in shown.stdout
    assert "activate (forced)" in shown.stdout
    none = run_docchat("models", "rollback", env=env)
    assert none.returncode == 1
    assert "nothing to roll back to" in none.stderr


def test_a_missing_model_file_is_one_clear_line_not_a_traceback(
    registry: Registry, variants: Variants, tmp_path: Path
) -> None:
    """A registered file gone (a restore onto a new machine, a cleaned disk): every
    command that loads the model says which file and what to do, and exits 1."""
    copy = tmp_path / "gone.gguf"
    shutil.copyfile(variants.q8, copy)
    data = tmp_path / "data"
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(data),
        "DOCCHAT_SECRETS_DIR": str(tmp_path / "none"),
        "DOCCHAT_LLM__MODEL_PATH": str(copy),
    }
    assert run_docchat("models", "add", str(copy), "--name", "gone", env=env).returncode == 0
    forced = run_docchat("models", "activate", "gone", "--no-evaluate", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    copy.unlink()
    for command in (["ask", "Which port?"], ["serve", "--port", str(free_port())]):
        result = run_docchat(*command, env=env, timeout=120)
        assert result.returncode == 1, (command, result.stderr)
        assert f"model 'gone': its file {copy} is missing" in result.stderr
        assert "Traceback" not in result.stderr
    # A catalog model's message names the command that provisions it again.
    entry = replace(registry.seed(variants.original), source="catalog:smollm2-135m")
    missing = replace(entry, path=tmp_path / "nowhere.gguf")
    with pytest.raises(ModelFileChanged, match="docchat models pull smollm2-135m"):
        registry.verify(missing)


def test_a_model_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    """Before issue #22's fix, `^...$` with re.match let "smol\\n" through as a model
    name (and so as a file and registry name), from the registry and `docchat models add`.
    No API route registers a model: the API's routes only look names up."""
    db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    db.migrate()
    try:
        with pytest.raises(RegistryError, match="invalid model name"):
            Registry(db).add_model(small_chat_model(), name="smol\n")
        assert Registry(db).models() == []
    finally:
        db.close()
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(tmp_path / "data"),
        "DOCCHAT_SECRETS_DIR": str(tmp_path / "none"),
    }
    added = run_docchat("models", "add", str(small_chat_model()), "--name", "smol\n", env=env)
    assert added.returncode == 1, added.stdout
    assert "invalid model name" in added.stderr
    assert "Traceback" not in added.stderr
    listed = run_docchat("models", "list", "--json", env=env)
    assert json.loads(listed.stdout) == []


def test_the_first_start_registers_the_configured_model(tmp_path: Path) -> None:
    """The registry's first start: the configured file is registered and activated."""
    settings = make_settings(tmp_path / "data")
    db = Database(settings.database_url)
    db.migrate()
    try:
        entry = active_model(settings, db)
        assert entry.active
        assert entry.path == small_chat_model().resolve()
        assert Registry(db).history()[0].action == "seed"
        again = active_model(settings, db)  # the second start verifies, no new row
        assert again.name == entry.name
        assert len(Registry(db).history()) == 1
    finally:
        db.close()


def test_pull_installs_a_catalog_model_checked_by_its_hash(tmp_path: Path) -> None:
    """SmolLM2's package is installed (make install): its file is taken from there, so
    no network is needed; the assembled file is checked against the pinned hash."""
    from dataclasses import replace

    from app.llm.catalog import CATALOG, PullError, pull

    model = CATALOG["smollm2-135m-instruct-q4_1"]
    seen: list[int] = []
    path = pull(model, tmp_path / "models", progress=seen.append)
    assert path == tmp_path / "models" / f"{model.name}.gguf"
    assert path.stat().st_size == model.size_bytes == sum(seen)
    assert path.read_bytes() == small_chat_model().read_bytes()
    again = pull(model, tmp_path / "models")  # there already: checked, not copied again
    assert again == path
    tampered = replace(model, name="tampered", sha256="0" * 64)
    with pytest.raises(PullError, match="not the pinned"):
        pull(tampered, tmp_path / "models")
    assert not (tmp_path / "models" / "tampered.gguf").exists()
    assert not (tmp_path / "models" / "tampered.partial").exists()


def test_a_model_made_from_another_is_pinned_like_a_download(tmp_path: Path) -> None:
    """A catalog model made on this machine (its source's weights written again by
    llama.cpp's quantizer, here SmolLM2's in BF16) is checked against its pin as an
    assembled one is: a file that does not match is not installed, and the one that
    does is the same file every time it is made."""
    from dataclasses import replace

    from gguf import GGUFReader

    from app.llm.catalog import CATALOG, PullError, pull
    from app.llm.requantize import requantize
    from common.files import file_sha256

    source = CATALOG["smollm2-135m-instruct-q4_1"]
    unpinned = replace(
        source, name="smollm2-bf16", quantization="BF16", parts=(), made_from=source.name
    )
    with pytest.raises(PullError, match=r"the made file is .* not the pinned"):
        pull(unpinned, tmp_path / "a")
    assert not (tmp_path / "a" / "smollm2-bf16.gguf").exists()
    assert not (tmp_path / "a" / "smollm2-bf16.partial").exists()
    assert (tmp_path / "a" / f"{source.name}.gguf").is_file()  # its source stays

    by_hand = tmp_path / "by-hand.gguf"
    requantize(small_chat_model(), by_hand, "BF16")
    pinned = replace(unpinned, sha256=file_sha256(by_hand), size_bytes=by_hand.stat().st_size)
    seen: list[int] = []
    path = pull(pinned, tmp_path / "b", progress=seen.append)
    assert path == tmp_path / "b" / "smollm2-bf16.gguf"
    assert path.read_bytes() == by_hand.read_bytes()
    assert sum(seen) == pinned.size_bytes
    reader = GGUFReader(path)
    types = {t.tensor_type.name for t in reader.tensors}
    assert "BF16" in types
    assert "Q4_1" not in types
    assert pull(pinned, tmp_path / "b") == path  # there already: checked, not made again


def test_the_default_model_is_pulled_and_registered_on_a_first_start(tmp_path: Path) -> None:
    """With no model configured, the first start fetches the catalog's default (checked
    against its pinned hash) and registers it under its catalog name; on a CPU with
    AVX512-BF16 it is the default's weights in BF16, made from it here and checked
    against their own pin."""
    from app.llm.catalog import CATALOG, DEFAULT_MODEL
    from app.llm.hardware import cpu_flags

    # Two threads: the pick on any machine with two cores or more is the default's weights.
    here = "qwen2.5-coder-0.5b-instruct-bf16" if "avx512_bf16" in cpu_flags() else DEFAULT_MODEL
    settings = make_settings(tmp_path / "data", llm={"model_path": None, "n_threads": 2})
    assert settings.llm.model_path is None
    db = Database(settings.database_url)
    db.migrate()
    try:
        entry = active_model(settings, db)
    finally:
        db.close()
    model = CATALOG[here]
    assert entry.name == here
    assert entry.sha256 == model.sha256
    assert entry.source == f"catalog:{here}"
    assert entry.path == (settings.data_dir / "models" / f"{here}.gguf").resolve()
    assert entry.chat_template


def test_the_image_bakes_in_the_default_model() -> None:
    """The Dockerfile names the default model's file: it must follow a change of it."""
    from app.llm.catalog import DEFAULT_MODEL

    dockerfile = (Path(__file__).parents[2] / "Dockerfile").read_text()
    # Declared in the builder stage (baked) and the runtime stage (served), alike.
    assert dockerfile.count(f"ARG CHAT_MODEL={DEFAULT_MODEL}\n") == 2
    assert "DOCCHAT_LLM__MODEL_PATH=/opt/docchat/models/${CHAT_MODEL}.gguf" in dockerfile
    assert "pull(CATALOG[sys.argv[1]]" in dockerfile
    assert '"$CHAT_MODEL"; fi' in dockerfile
