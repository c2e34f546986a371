"""The base-model upgrade, end to end, the way an operator runs it: users rate answers
on a live server; a reviewer curates them; a dataset is built; an adapter is trained
on base A and goes through the gate into service (the server swaps to it); base B is
activated; the old adapter is refused on B with its reason while the dataset stays as
it was; a new adapter trains on B from the same dataset, passes the gate and serves."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import llama_cpp as ll

from app.components import build_components
from app.llm.hosting import SwappableEngine
from app.main import create_app
from app.store.models import Message
from tests.conftest import (
    CORPUS,
    FIXTURES,
    Models,
    ingest_into,
    make_settings,
    run_docchat,
    serve_in_thread,
)
from tests.needs import need_module

need_module("peft", "the finetune extra (make install brings it)")

# Hand-written examples in one house style (a short answer, then its source), the kind a
# support team curates; the held-out split is asked in the same style.
EXAMPLES = [
    ("Which port does the widget server use?", "Port 7421 [1].", "guide.md"),
    ("Where is the widget config file?", "In /etc/widget/widget.toml [1].", "guide.md"),
    ("How do I start the widget server?", "Run `widgetctl start` [1].", "guide.md"),
    ("How do I see the installed widgetctl version?", "Run `widgetctl --version` [1].", "guide.md"),
    ("What does listen_address default to?", "To 0.0.0.0 [1].", "guide.md"),
    ("Is an empty widget.toml valid?", "Yes: every setting has a default [1].", "guide.md"),
]


def docchat(env: dict[str, str], *args: str, ok: bool = True) -> str:
    done = run_docchat(*args, env=env, timeout=900)
    if ok:
        assert done.returncode == 0, f"docchat {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    else:
        assert done.returncode != 0, done.stdout
    return done.stdout + done.stderr


def wait_for(check: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the server did not follow the registry"
        time.sleep(0.3)


def test_feedback_to_adapter_survives_a_base_model_upgrade(tmp_path: Path, models: Models) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("guide.md", "notes.txt"):
        shutil.copy(CORPUS / name, corpus / name)
    gate_file = tmp_path / "gate.jsonl"
    cases = (FIXTURES / "corpus_qa.jsonl").read_text().splitlines()[:3]
    gate_file.write_text("\n".join(cases) + "\n")
    # Three gate questions: one that flips is a share of 0.33, so the tolerance lets one
    # move (the gate's comparison itself is tested on models in tests/llm).
    # Latency does not gate here: the gate's two arms are timed minutes apart, and on a
    # shared 2-core machine load in one of them refused a sound adapter (its p95 rule is
    # tested on its own in tests/llm/test_models.py); this test follows the lifecycle.
    gate = {
        "gate_sets": [{"file": str(gate_file)}],
        "gate_tolerance": 0.34,
        "gate_latency_ratio": None,
        "poll_interval_s": 0.5,
    }
    settings = make_settings(tmp_path / "data", models=gate)
    ingest_into(settings, models.embedder, corpus)
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(settings.data_dir),
        "DOCCHAT_SECRETS_DIR": str(settings.data_dir / "no-secrets"),
        "DOCCHAT_LLM__TEMPERATURE": "0",
        "DOCCHAT_LLM__MAX_TOKENS": "64",
        "DOCCHAT_MODELS__GATE_SETS": json.dumps(gate["gate_sets"]),
        "DOCCHAT_MODELS__GATE_TOLERANCE": "0.34",
        "DOCCHAT_MODELS__GATE_LATENCY_RATIO": "",
        "COLUMNS": "200",
    }

    # The server loads its model through the registry (SmolLM2 becomes base A).
    components = build_components(settings, writer=False, embedder=models.embedder)
    engine = components.engine
    assert isinstance(engine, SwappableEngine)
    try:
        for base_url in serve_in_thread(create_app(settings, components)):
            with httpx.Client(base_url=base_url, timeout=300) as client:
                _run(client, env, tmp_path, components, engine)
    finally:
        components.close()


def _run(
    client: httpx.Client,
    env: dict[str, str],
    tmp_path: Path,
    components: Any,
    engine: SwappableEngine,
) -> None:
    # 1. Users ask and rate.
    answers = []
    for question in ("What port does the widget server listen on?", "How do I check widgetctl?"):
        reply = client.post("/api/chat", json={"question": question, "stream": False})
        assert reply.status_code == 200, reply.text
        answers.append(reply.json())
    for answer, rating in zip(answers, ("up", "down"), strict=True):
        rated = client.post(
            f"/api/messages/{answer['message_id']}/feedback", json={"rating": rating}
        )
        assert rated.status_code in (200, 201), rated.text

    # 2. A reviewer curates: one accepted, one corrected, a few added by hand.
    docchat(env, "curate", "accept", answers[0]["message_id"])
    docchat(
        env,
        "curate",
        "correct",
        answers[1]["message_id"],
        "--answer",
        "Run `widgetctl --version` [1].",
    )
    handmade = tmp_path / "examples.jsonl"
    handmade.write_text(
        "".join(
            json.dumps({"question": q, "answer": a, "sources": [s]}) + "\n" for q, a, s in EXAMPLES
        )
    )
    docchat(env, "curate", "add", "--file", str(handmade))

    # 3. The dataset: an immutable snapshot with a held-out split.
    docchat(env, "dataset", "build", "support", "--held-out", "0.25")
    before = json.loads(docchat(env, "dataset", "show", "support", "--json"))
    assert before["n_held_out"] >= 1
    assert before["file_ok"]

    # 4. An adapter for base A, through the gate into service; the server swaps to it.
    # One epoch: this test follows the adapter's lifecycle; what training changes in the
    # answers is tested in tests/finetune/test_adapter.py.
    docchat(env, "finetune", "train", "--dataset", "support", "--epochs", "1")
    (adapter_a,) = json.loads(docchat(env, "finetune", "list", "--json"))
    base_a = adapter_a["base_name"]
    assert adapter_a["incompatible"] == []
    assert adapter_a["dataset_sha256"] == before["sha256"]
    docchat(env, "finetune", "activate", adapter_a["name"])
    wait_for(lambda: engine.adapter_sha256 == adapter_a["sha256"])
    reply = client.post("/api/chat", json={"question": "Which port?", "stream": False}).json()
    with components.db.session() as session:
        message = session.get_one(Message, reply["message_id"])
        assert message.adapter_sha256 == adapter_a["sha256"]
        assert message.model == f"{base_a}+{adapter_a['name']}"
        # The client is told the same release: names and short hashes.
        assert reply["release"] == {
            "model": message.model,
            "model_sha256": message.model_sha256[:12],
            "adapter_sha256": adapter_a["sha256"][:12],
        }
    shown = json.loads(docchat(env, "finetune", "show", adapter_a["name"], "--json"))
    held = shown["eval_report"]["held_out"]
    assert held["adapter"]["examples"] == before["n_held_out"]
    assert held["base"]["examples"] == before["n_held_out"]

    # 5. Base B (a Q8_0 requantization: another file, the same architecture) goes in.
    model_a = Path(json.loads(docchat(env, "models", "show", base_a, "--json"))["path"])
    model_b = tmp_path / "smollm2-q8_0.gguf"
    params = ll.llama_model_quantize_default_params()
    params.ftype = ll.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    assert ll.llama_model_quantize(str(model_a).encode(), str(model_b).encode(), params) == 0
    docchat(env, "models", "add", str(model_b), "--name", "smollm2-q8")
    docchat(env, "models", "activate", "smollm2-q8", "--force", "--no-evaluate")
    wait_for(lambda: engine.model_id == "smollm2-q8" and engine.adapter_sha256 is None)

    # 6. The old adapter is refused on B, by the CLI and the API, with the reason.
    (listed,) = json.loads(docchat(env, "finetune", "list", "--json"))
    assert "trained on" in listed["incompatible"][0]
    refused = docchat(env, "finetune", "activate", adapter_a["name"], "--force", ok=False)
    assert "cannot be served on model 'smollm2-q8'" in refused
    api = client.post(f"/api/admin/adapters/{adapter_a['name']}/activate", json={"evaluate": False})
    assert api.status_code == 409
    assert api.json()["error"]["type"] == "incompatible_adapter"

    # 7. What was learned is untouched: the same dataset, the same examples.
    after = json.loads(docchat(env, "dataset", "show", "support", "--json"))
    assert after["sha256"] == before["sha256"]
    assert after["file_ok"]
    assert len(json.loads(docchat(env, "curate", "list", "--json"))) == len(EXAMPLES) + 2

    # 8. A new adapter trains on B from the same dataset and passes the gate.
    docchat(env, "finetune", "train", "--dataset", "support", "--epochs", "1")
    adapters = {a["name"]: a for a in json.loads(docchat(env, "finetune", "list", "--json"))}
    (adapter_b,) = [a for a in adapters.values() if a["base_name"] == "smollm2-q8"]
    assert adapter_b["dataset_sha256"] == before["sha256"]
    assert adapters[adapter_a["name"]]["incompatible"]
    # Through the admin API this time: a job that measures inside the server.
    started = client.post(f"/api/admin/adapters/{adapter_b['name']}/activate", json={})
    assert started.status_code == 202, started.text
    job = f"/api/admin/model-jobs/{started.json()['id']}"
    wait_for(lambda: client.get(job).json()["status"] != "running", seconds=600)
    assert client.get(job).json() == {**started.json(), "status": "activated", "problems": []}
    assert engine.adapter_sha256 == adapter_b["sha256"]
    assert engine.model_id == f"smollm2-q8+{adapter_b['name']}"
