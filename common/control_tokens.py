"""Chat-template control tokens: text from users and documents must never carry them.

The engine tokenizes prompts with special tokens enabled, so such a token in a question
or a retrieved passage would really open a new chat turn. Ingest reports them (as a
possible prompt injection); the prompt builder strips them from everything but its own
system message.
"""

from __future__ import annotations

import re

# The control tokens of the common model families. `<|...|>` covers ChatML
# (<|im_start|>, <|im_end|>), <|endoftext|>, Phi/Zephyr (<|system|>, <|end|>) and Llama 3
# (<|eot_id|>, <|start_header_id|>...); the rest are Llama 2 / Mistral and Gemma.
# Tokenizers match these case-sensitively; only the `<|...|>` form, which never occurs in
# prose, is matched in any case ("[inst]" does occur, e.g. in changelogs).
CONTROL_TOKEN = re.compile(
    r"<\|[A-Za-z0-9_.\-]{1,40}\|>"
    r"|\[/?INST\]"
    r"|\[/?SYSTEM_PROMPT\]"
    r"|<</?SYS>>"
    r"|<(?:start|end)_of_turn>"
)


def strip_control_tokens(text: str) -> str:
    """Remove chat-template control tokens, so that text can never open a new chat turn."""
    # Repeat: removing "<|im_end|>" from "<|im_<|im_end|>start|>" forms a new token.
    while True:
        stripped = CONTROL_TOKEN.sub("", text)
        if stripped == text:
            return text
        text = stripped
