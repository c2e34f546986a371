"""What every section shares: the config that keeps its input out of errors, and the
checks its validators call.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import ConfigDict

# Pydantic quotes the offending input in its errors, and a section's input holds its
# secrets: no error message may carry them.
SECTION_CONFIG = ConfigDict(hide_input_in_errors=True)


def invalid_patterns(name: str, patterns: list[str]) -> list[str]:
    """One problem per pattern that is not a valid regular expression, by its index."""
    problems = []
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"{name}[{index}] is not a valid regular expression ({exc})")
    return problems


def has_user_info(url: str) -> bool:
    """Whether a URL carries credentials before its host (user:password@)."""
    return "@" in urlsplit(url).netloc
