"""What `llm.stop_repeats` would change in answers written without it (figures).

    .venv/bin/python benchmarks/stop_repeats.py RESULTS.json --set eval/docs_qa.jsonl \\
        [--model FILE.gguf]     # default: SmolLM2, the model of the benchmarks

RESULTS.json is benchmarks/answer_models.py's output with --with-results, run with
DOCCHAT_LLM__STOP_REPEATS=0. With greedy decoding the stop only cuts an answer short (the
tokens before the cut are the same), so replaying the check over each answer's tokens
says exactly where it would have ended: how many answers, how many tokens saved, and
whether any expected-phrase verdict changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.evaluation.cases import contains_expected, read_cases  # noqa: E402
from app.llm.batching import LOOP_MIN_TOKENS, looping  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--set", type=Path, required=True, help="The question set asked.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, help="The GGUF file that wrote them (its tokenizer).")
    args = parser.parse_args()

    from llama_cpp import Llama

    from app.llm.provision import small_chat_model

    cases = {c.question: c for c in read_cases(args.set)}
    vocab = Llama(model_path=str(args.model or small_chat_model()), vocab_only=True, verbose=False)
    for entry in json.loads(args.results.read_text()):
        report = entry["report"]
        cut = saved = total = changed = 0
        length_before = length_after = 0
        for result in report["results"]:
            tokens = vocab.tokenize(result["answer"].encode(), add_bos=False, special=False)
            total += len(tokens)
            limited = result["finish_reason"] == "length"
            length_before += limited
            at = next(
                (
                    i
                    for i in range(LOOP_MIN_TOKENS * args.repeats, len(tokens) + 1)
                    if looping(tokens[:i], args.repeats)
                ),
                None,
            )
            if at is None:
                length_after += limited
                continue
            cut += 1
            saved += len(tokens) - at
            text = vocab.detokenize(tokens[:at]).decode("utf-8", "ignore")
            case = cases[result["question"]]
            changed += contains_expected(case, text) != contains_expected(case, result["answer"])
        print(
            f"{entry['model']} on {entry['set']}: {cut} of {len(report['results'])} answers "
            f"end early, {saved} of {total} tokens saved ({saved / max(total, 1):.1%}); "
            f"answers at max_tokens {length_before} -> {length_after}; expected-phrase "
            f"verdicts changed: {changed}"
        )


if __name__ == "__main__":
    main()
