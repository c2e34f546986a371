"""Train a LoRA adapter for a GGUF base model on this machine.

transformers reads the GGUF base directly (dequantized to fp32) and peft adds the LoRA
matrices; the loss counts only the approved answer's tokens, the prompt being what the
chat service sends (rows.py). Training is reproducible (a fixed seed decides the
initial weights and the order of the examples) and resumable: every few steps a
checkpoint keeps the LoRA weights, the optimizer and the losses, and a run started
again with the same base, data and settings continues from it. A GPU is used when
torch sees one. The result is a GGUF adapter file (gguf_adapter.py) llama.cpp loads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.finetune.gguf_adapter import PERMUTES_QK, BaseShape, write_adapter

log = logging.getLogger(__name__)

# fp32 weights, their gradients' share, the optimizer's LoRA state and the activations
# of one example, over the weights alone: measured on SmolLM2 (peak RSS / fp32 bytes).
MEMORY_FACTOR = 3.0
CHECKPOINT = "checkpoint.pt"


class TrainingError(RuntimeError):
    """Training cannot run here or with this data; the message says why."""


@dataclass(frozen=True)
class TrainConfig:
    """The hyperparameters, recorded with the adapter."""

    rank: int = 8
    alpha: float = 16.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    learning_rate: float = 2e-4
    epochs: int = 2
    # Prompt and answer together; longer examples lose the start of their prompt.
    max_tokens: int = 1024
    seed: int = 0
    checkpoint_every: int = 10

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        values = asdict(self)
        values["target_modules"] = list(self.target_modules)
        return values


@dataclass
class TrainResult:
    """What a run produced and how it went."""

    adapter: Path
    steps: int
    examples: int
    first_loss: float
    last_loss: float
    seconds: float
    device: str
    resumed_at: int = 0
    losses: list[float] = field(default_factory=list)

    @property
    def seconds_per_step(self) -> float:
        """Training time per example seen (steps of this run only)."""
        done = self.steps - self.resumed_at
        return self.seconds / done if done else 0.0


def available_memory(device: str) -> int:
    """Bytes free for training on `device`."""
    import torch

    if device == "cuda":
        free, _total = torch.cuda.mem_get_info()
        return int(free)
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_memory(parameters: int, device: str) -> None:
    """TrainingError when the base cannot be trained in this device's free memory."""
    needed = parameters * 4 * MEMORY_FACTOR
    free = available_memory(device)
    if needed > free:
        raise TrainingError(
            f"training needs about {needed / 2**30:.1f} GiB on {device} for a base of "
            f"{parameters / 1e6:.0f} M parameters (fp32), and {free / 2**30:.1f} GiB is free: "
            "use a smaller base model, or a machine with more memory or a GPU"
        )


def pick_device(requested: str | None = None) -> str:
    """The requested device, or a GPU when torch sees one, else the CPU."""
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_identity(base_sha256: str, rows: list[list[dict[str, str]]], config: TrainConfig) -> str:
    """What a checkpoint must match to be resumed."""
    data = json.dumps([base_sha256, rows, config.as_dict()], sort_keys=True)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def encode(tokenizer: Any, messages: list[dict[str, str]], max_tokens: int) -> tuple[Any, Any]:
    """Token ids and labels of one example: the prompt's labels are -100 (no loss), the
    answer's are its ids. Too long: the prompt loses its oldest tokens first."""
    prompt = tokenizer.apply_chat_template(
        messages[:-1], tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise TrainingError("the chat template does not end a prompt where the answer starts")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    if len(answer_ids) >= max_tokens:
        answer_ids = answer_ids[: max_tokens // 2]
    prompt_ids = prompt_ids[-(max_tokens - len(answer_ids)) :]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def train_adapter(
    base: Path,
    *,
    base_sha256: str,
    parameters: int,
    rows: list[list[dict[str, str]]],
    out: Path,
    work_dir: Path,
    config: TrainConfig,
    name: str,
    device: str | None = None,
    progress: Callable[[int, int, float], None] = lambda step, total, loss: None,
) -> TrainResult:
    """Train on `rows` (chat messages, the last one the approved answer) and write the
    adapter to `out`; a checkpoint in `work_dir` of the same run is resumed."""
    if not rows:
        raise TrainingError("the dataset has no training examples")
    if any(not row or row[-1]["role"] != "assistant" for row in rows):
        raise TrainingError("every training example must end with the assistant's answer")
    device = pick_device(device)
    check_memory(parameters, device)

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # The CLI shows its own progress.
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    began = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(base.parent, gguf_file=base.name)
    model: Any = AutoModelForCausalLM.from_pretrained(
        base.parent, gguf_file=base.name, dtype=torch.float32
    )
    shape = base_shape(model.config)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,  # type: ignore[arg-type]  # a float works
        target_modules=list(config.target_modules),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora).to(device)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    examples = [encode(tokenizer, row, config.max_tokens) for row in rows]
    order = random.Random(config.seed)
    schedule: list[int] = []
    for _ in range(config.epochs):
        epoch = list(range(len(examples)))
        order.shuffle(epoch)
        schedule += epoch

    identity = run_identity(base_sha256, rows, config)
    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = work_dir / CHECKPOINT
    losses: list[float] = []
    start = 0
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        if saved.get("identity") == identity:
            model.load_state_dict(saved["lora"], strict=False)
            optimizer.load_state_dict(saved["optimizer"])
            torch.set_rng_state(saved["rng"])
            losses, start = list(saved["losses"]), int(saved["step"])
            log.info("resuming training at step %d of %d", start, len(schedule))
        else:
            log.info("a checkpoint of another run is in %s: starting over", work_dir)
    model.train()
    trained_at = time.monotonic()
    for step in range(start, len(schedule)):
        ids, labels = examples[schedule[step]]
        output = model(
            input_ids=torch.tensor([ids], device=device),
            labels=torch.tensor([labels], device=device),
        )
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(output.loss.detach()))
        progress(step + 1, len(schedule), losses[-1])
        done = step + 1
        if done % config.checkpoint_every == 0 and done < len(schedule):
            _save(checkpoint, identity, model, optimizer, losses, done)
    seconds = time.monotonic() - trained_at
    state = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    write_adapter(out, state, shape, alpha=config.alpha, name=name)
    checkpoint.unlink(missing_ok=True)
    log.info("adapter written to %s in %.0f s", out, time.monotonic() - began)
    return TrainResult(
        adapter=out,
        steps=len(schedule),
        examples=len(rows),
        first_loss=losses[0],
        last_loss=_mean(losses[-len(rows) :]),
        seconds=seconds,
        device=device,
        resumed_at=start,
        losses=losses,
    )


def base_shape(config: Any) -> BaseShape:
    """The base's architecture and dimensions, from transformers' config of it."""
    architecture = str(config.model_type)
    if architecture not in PERMUTES_QK:
        raise TrainingError(
            f"adapters can be trained for {', '.join(PERMUTES_QK)} models, not {architecture}"
        )
    return BaseShape(
        architecture=architecture,
        n_layers=int(config.num_hidden_layers),
        n_heads=int(config.num_attention_heads),
        n_kv_heads=int(getattr(config, "num_key_value_heads", config.num_attention_heads)),
        hidden_size=int(config.hidden_size),
    )


def _save(
    path: Path, identity: str, model: Any, optimizer: Any, losses: list[float], step: int
) -> None:
    import torch

    partial = path.with_suffix(".partial")
    torch.save(
        {
            "identity": identity,
            "lora": {k: v for k, v in model.state_dict().items() if "lora_" in k},
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "losses": losses,
            "step": step,
        },
        partial,
    )
    partial.replace(path)  # a kill while saving leaves the previous checkpoint


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
