"""Drafts for prompt-lookup decoding: an answer that quotes its passages repeats runs of
its own prompt, so the tokens that followed the answer's last few tokens where they
last occurred (in the prompt or the answer so far) are a good guess of what comes next.

The batch worker decodes those guesses in the same step as the sequence's real next
token and keeps the ones the model itself would have chosen (greedy decoding), so the
text is what decoding one token at a time writes, only in fewer steps when it quotes.
"""

from __future__ import annotations

# How many tokens the match must span: 3 finds quotes without guessing from common pairs.
NGRAM = 3


class PromptLookup:
    """The sequence so far and, for each n-gram in it, where its latest occurrence that
    has a successor ends."""

    def __init__(self, tokens: list[int], n: int = NGRAM) -> None:
        self.n = n
        self.tokens = list(tokens)
        self.index: dict[tuple[int, ...], int] = {}
        for i in range(len(self.tokens) - n):  # the last n-gram has no successor yet
            self.index[tuple(self.tokens[i : i + n])] = i + n

    def add(self, token: int) -> None:
        """A token the sequence wrote: the n-gram before it now has a successor."""
        if len(self.tokens) >= self.n:
            self.index[tuple(self.tokens[-self.n :])] = len(self.tokens)
        self.tokens.append(token)

    def draft(self, k: int) -> list[int]:
        """Up to k tokens that followed the sequence's last n-gram where it last occurred."""
        if k <= 0 or len(self.tokens) < self.n:
            return []
        start = self.index.get(tuple(self.tokens[-self.n :]))
        if start is None:
            return []
        return self.tokens[start : start + k]
