"""How a question is answered from the documents: retrieval, prompting and grounding (rag)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from app.settings.validation import SECTION_CONFIG


class RagSettings(BaseModel):
    """Retrieval and prompting."""

    model_config = SECTION_CONFIG

    top_k: int = Field(
        4,
        ge=1,
        le=50,
        description="Most passages put into the prompt (each one or more neighbouring "
        "chunks; see context_tokens).",
    )
    retrieval: Literal["hybrid", "vector"] = Field(
        "hybrid",
        description="How chunks are found. hybrid: the vector ranking and a BM25 ranking "
        "of the chunks' words (kept in step with ingest, saved under <data_dir>/lexical) "
        "fused by reciprocal rank; vector: by embedding similarity alone.",
    )
    candidates: int = Field(
        20,
        ge=1,
        le=200,
        description="Chunks each ranking (vectors, words) contributes before they are fused.",
    )
    lexical_weight: float = Field(
        0.0,
        ge=0.0,
        le=4.0,
        description="Weight of the BM25 ranking against the vector ranking (1.0) in a "
        "hybrid search, for a question in plain words; a question that names something "
        "as code writes it (json.dumps, --amend, WX-4163, `x`) fuses both at 1.0. 0: plain "
        "questions go by meaning alone (on paraphrased questions shared common words "
        "ranked worse; see docs/retrieval.md).",
    )
    context_tokens: int = Field(
        1200,
        ge=0,
        le=32_000,
        description="Budget for the documentation excerpts in a prompt, in tokens of the "
        "embedding model's tokenizer (close to the chat model's for English; about four "
        "characters each). The best hits are taken in rank order, adjacent hits merged, "
        "near-duplicates dropped, then each passage widened to its neighbouring chunks of "
        "the same section while the budget allows. 0: the top_k chunks as found, unwidened.",
    )
    min_score: float = Field(
        0.3,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity below which a chunk counts as not relevant; and, "
        "for a collection without a scope calibration (or with scope=min_score), the "
        "score a question's best chunk must reach, else the answer says the docs do not "
        "cover the question.",
    )
    scope: Literal["calibrated", "min_score"] = Field(
        "calibrated",
        description="How docchat decides that the docs do not cover a question, before "
        "the model is asked. calibrated: the question's best chunk must reach the "
        "collection's own threshold (calibrated by `docchat ingest` from a list of "
        "unrelated questions, or by `docchat calibrate --questions FILE` from a question "
        "set; min_score until then), and the question must name nothing the collection "
        "never mentions (a product, a tool: Okta, Sourcetree); min_score: the best chunk "
        "must reach min_score, the same on every collection (docchat before 2026-12).",
    )
    history_turns: int = Field(
        3, ge=0, description="Earlier question/answer pairs of a conversation put in the prompt."
    )
    followups: Literal["off", "rules", "model"] = Field(
        "rules",
        description='How a follow-up question ("and how do I undo it?") is made standalone '
        'before retrieval. rules: one that reads like a follow-up (opens with "and", '
        'points back with "it" or "that", or is a few words long) is searched '
        "together with the previous question; model: the chat model rewrites it (a "
        "short generation before the answer); off: searched as asked (with the previous "
        "question only when alone it finds nothing).",
    )
    max_question_chars: int = Field(4000, ge=1, description="Longest question accepted.")
    max_messages: int = Field(
        256,
        ge=2,
        description="Most messages one OpenAI-style request may carry (system, history and "
        "question together); more is refused with 413 before any work is done.",
    )
    max_request_chars: int = Field(
        100_000,
        ge=1000,
        description="Most characters in all messages of one request together; more is "
        "refused with 413. Only the newest turns that fit the context reach the model.",
    )
    answerable_names: bool = Field(
        True,
        description="Also refuse a question whose passages name none of what it asks "
        "about (a capitalized name, an acronym, a version: 'Git LFS', 'Django', 'Python "
        "3.13') when the name is rare in the collection (in fewer than 0.35% of "
        "its chunks): a near miss in the manual's own field that the scope threshold lets "
        "through (app/rag/answerable.py; with rag.scope=calibrated and "
        "rag.retrieval=hybrid, whose word index says how rare a name is; measured in "
        "docs/answer-quality.md).",
    )
    answer_types: bool = Field(
        True,
        description="Also refuse a question that asks for a price, a phone number, a "
        "contact's e-mail address or a release date when none of its passages holds one "
        "(an amount of money, a number, an address, a calendar date): the docs found are "
        "about the product but do not say it, and a small model would invent it "
        "(app/rag/answer_types.py; with rag.scope=calibrated; measured in "
        "docs/answer-quality.md).",
    )
    grounding_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Grounding score (share of the answer supported by the retrieved "
        "chunks) below which an answer counts as ungrounded.",
    )
    check_terms: bool = Field(
        True,
        description="Also judge an answer ungrounded when a command, flag, setting, "
        "environment variable, path, function or number it names is missing from its "
        "passages, or is found only in a paragraph that says nothing of what the answer "
        "says about it (app/rag/terms.py; measured against hand-labelled answers in "
        "docs/answer-quality.md). Costs about a millisecond.",
    )
    check_restated: bool = Field(
        True,
        description="Also judge an answer ungrounded when every sentence of it only "
        "restates the question, yes or no apart ('Yes, you can run it on Postgres "
        "instead of SQLite.'): its one claim is its yes or no, which the passages found "
        "(they resemble the question) seem to support whichever it is; the passage is "
        "shown instead (app/rag/grounding.py; of 26 such labelled answers 1 was right, "
        "docs/answer-quality.md).",
    )
    min_confidence: float | Literal["auto"] | None = Field(
        "auto",
        description="Also judge an answer ungrounded when the chat model was unsure of it: "
        "the geometric mean of the probabilities it gave its own tokens (checks.confidence, "
        "0 to 1) below this. auto: the floor measured on the hand labels for the catalog "
        "model in service (docs/answer-quality.md), no check for other models; a number "
        "sets the floor for any model; empty: no check. Costs a fraction of a millisecond "
        "per token; a remote engine reports no token probabilities, so it is not checked.",
    )
    self_check: float | Literal["auto"] | None = Field(
        "auto",
        description="Ask the chat model, right after it answers, whether its answer is "
        "supported by the excerpts (only the question's tokens are new: the answer is "
        "still in its cache) and judge the answer ungrounded when its share of yes "
        "(checks.self_check, 0 to 1) is below this. auto: the floor measured on the hand "
        "labels for the catalog model in service, no check for other models; a number: "
        "that floor for any model; empty: never asked. Asked only of answers the other "
        "checks passed; a remote engine is not asked (app/chat/self_check.py).",
    )
    sentence_support: bool = Field(
        True,
        description="Give every answer sentence the passage sentence that supports it best "
        "(checks.support: sentence, source, passage_sentence, score, supported; the chat "
        "page shows it on hover or tap and marks unsupported sentences). Costs one "
        "embedding batch of the answer's and the passages' sentences, about as long as "
        "the grounding score itself (app/rag/support.py; docs/answer-quality.md).",
    )
    ungrounded_action: Literal["flag", "replace", "passages"] = Field(
        "passages",
        description="What a user sees when an answer is not supported by its passages. "
        "flag: the answer, marked as such; replace: that the docs do not cover it, with the "
        "closest sources listed; passages: the closest passage word for word, cited.",
    )

    @field_validator("min_confidence", "self_check", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        # An environment variable cannot be null: empty is how it turns the check off.
        return None if isinstance(value, str) and not value.strip() else value
