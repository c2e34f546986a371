"""Personal data in stored and logged text: found and replaced by a placeholder.

Why not a ready-made analyzer: Presidio (the maintained one) needs a spaCy language
model that no package index serves here (spaCy fetches its models from GitHub), and even
on a blank pipeline it took ~11 ms a message, tagged dates and file names as personal
data, and tried to download the public-suffix list at run time. scrubadub and
commonregex are unmaintained. So the parts that are hard to get right come from
maintained libraries, and the rest are plain, tested patterns:

- phone numbers: libphonenumber's own matcher (`phonenumbers`, Google's metadata),
  numbers it calls valid only, in international form (+44 …, and 0044 … with the 00
  prefix most of the world dials, which the matcher reads only in regions that use it)
  or national to `phone_region`;
- card numbers: 13-19 digits with a known issuer prefix and a valid Luhn check digit
  (`python-stdnum`);
- IBANs: country format and ISO 7064 checksum (`python-stdnum`);
- IP addresses: IPv4 and IPv6 read by the standard library; loopback and unspecified
  addresses (127.0.0.1, 0.0.0.0, ::1) are configuration, not people, and stay;
- email addresses: a pattern.

Names are not detected: that needs a language model (benchmarks/pii_redaction.py).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn

from app.settings import PrivacySettings

KINDS = ("email", "phone", "card", "iban", "ip")
PLACEHOLDER = {kind: f"[{kind.upper()}]" for kind in KINDS}

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)
# Digit runs with single spaces or dashes between groups: 13-19 digits in all.
_CARD = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w-]|\.\d)")
# Card issuer prefixes (IIN ranges) of the big networks; a Luhn-valid number without
# one is much more often an order or tracking number.
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9])|35)")
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![\w])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:)?(?![\w:])")
# The international prefix 00 (or "00 ") before a country code, at the start of a
# number: not inside a word, a version (1.0044), a time (00:44) or a path.
_INTL_00 = re.compile(r"(?<![\w.:/+-])00( ?)(?=[1-9])")


@dataclass(frozen=True)
class Found:
    """A piece of personal data: its kind and where it is in the text."""

    kind: str
    start: int
    end: int


def _cards(text: str) -> Iterable[Found]:
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn.is_valid(digits):
            yield Found("card", match.start(), match.end())


def _ibans(text: str) -> Iterable[Found]:
    for match in _IBAN.finditer(text):
        candidate = match.group().rstrip()
        if iban.is_valid(candidate):
            yield Found("iban", match.start(), match.start() + len(candidate))


def _phones(text: str, region: str) -> Iterable[Found]:
    # The 00 prefix is written as "+" (padded to the same length, so every position
    # stays where it was): the matcher takes 00 for the international prefix only in
    # regions that dial it, not in the US, whose prefix is 011.
    plus = _INTL_00.sub(lambda m: " " * (1 + len(m.group(1))) + "+", text)
    matcher = phonenumbers.PhoneNumberMatcher(plus, region, leniency=phonenumbers.Leniency.VALID)
    for match in matcher:
        start = match.start
        if plus[start] == "+" and text[start] != "+":  # reach back over the 00 it stood for
            start = text.rindex("00", 0, start + 1)
        yield Found("phone", start, match.end)


def _public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified)


def _ips(text: str) -> Iterable[Found]:
    for match in _IPV4.finditer(text):
        if _public(match.group()):
            yield Found("ip", match.start(), match.end())
    for match in _IPV6.finditer(text):
        candidate = match.group()
        groups = [g for g in candidate.split(":") if g]
        # Two groups at least, one digit at least: not "a::b", "::" or a C++ scope.
        if len(groups) >= 2 and re.search(r"\d", candidate) and _public(candidate):
            yield Found("ip", match.start(), match.end())


class PiiRedactor:
    """Finds personal data of the given kinds and replaces it with [KIND]."""

    def __init__(self, kinds: Iterable[str] = KINDS, *, region: str = "US") -> None:
        self.kinds = frozenset(kinds)
        unknown = self.kinds - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds of personal data: {', '.join(sorted(unknown))}")
        self.region = region

    def find(self, text: str) -> list[Found]:
        """What is in `text`, in order, without overlaps (the stricter checks first:
        a card or IBAN wins over the phone number its digits could also be)."""
        found: list[Found] = []
        if "email" in self.kinds and "@" in text:
            found += [Found("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
        if "card" in self.kinds:
            found += _cards(text)
        if "iban" in self.kinds:
            found += _ibans(text)
        if "ip" in self.kinds and ("." in text or ":" in text):
            found += _ips(text)
        if "phone" in self.kinds and sum(c.isdigit() for c in text) >= 7:
            found += _phones(text, self.region)
        kept: list[Found] = []
        for item in found:  # in priority order: the first claim on a range keeps it
            if not any(item.start < k.end and k.start < item.end for k in kept):
                kept.append(item)
        return sorted(kept, key=lambda f: f.start)

    def redact(self, text: str) -> str:
        """`text` with each piece of personal data replaced by its placeholder."""
        if not text:
            return text
        out, last = [], 0
        for item in self.find(text):
            out += [text[last : item.start], PLACEHOLDER[item.kind]]
            last = item.end
        return "".join(out) + text[last:] if out else text


def redactor_for(settings: PrivacySettings) -> PiiRedactor | None:
    """The redaction the settings ask for (None: privacy.redact_personal_data is off)."""
    if not settings.redact_personal_data:
        return None
    return PiiRedactor(settings.redact_kinds, region=settings.phone_region)
