"""Optional PII masking of item text before it is sent to a model (`models[].mask_pii`).

With `mask_pii: true` (or a mapping, see `PiiConfig`), every string field of every gold item
and few-shot example shown to that model has its e-mail addresses, phone numbers, payment card
numbers and IP addresses replaced by typed placeholders (`[EMAIL]`, `[PHONE]`, `[CARD]`,
`[IP]`), and each match of the user's own regexes by `[NAME]`. It happens before the template
is rendered, per model: the masked text is what that model sees and what its cache key covers
(masked and unmasked prompts are different calls), while a local model can keep the original.
The manifest records per setup which kinds were masked and how many replacements each made,
never a masked value.

What each built-in kind matches, and what it leaves alone on purpose:
- email: `local@domain.tld`, with plus tags, dots, subdomains and non-ASCII letters.
- card: 13-19 digits (whole, or grouped 4-4-4-4 / 4-6-5 by spaces or hyphens) that start with
  2-6 (the major card networks) and pass the Luhn check, so a 16-digit order number that fails
  the check is kept.
- ip: IPv4 and IPv6 addresses that `ipaddress` accepts (`192.168.0.12`, `2001:db8::7334`);
  not versions (`v2.10.3`, `1.2.3`), times (`10:30:15`) or MAC addresses.
- phone: a leading `+` and 7-15 digits in any grouping (`+44 20 7946 0958`,
  `+1 (415) 555-0132`); the North American shapes `(415) 555-0132`, `415-555-0132`,
  `415.555.0132`, `1-800-555-0199`; national numbers with a trunk 0 and one separator used
  throughout, 9-12 digits (`020 7946 0958`, `06 12 34 56 78`, `030 1234567`; after a 00
  international prefix up to 17, `0044 20 7946 0958`). Not bare digit
  runs (order numbers), dates (`2024-03-15`, `15.03.2024`), prices or versions.

Order: the user's patterns first (they are the most specific), then email, ip, card, phone;
a placeholder holds no digits, so a later kind never matches inside an earlier one's output.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from harness.config.pii import PII_KINDS, PiiConfig
from harness.core.records import GoldItem

# The order kinds are masked in: an e-mail address holds what looks like an IP or a phone.
ORDER = ("email", "ip", "card", "phone")

EMAIL = re.compile(
    r"(?<![\w.%+-])\w(?:[\w.%+'-]*[\w%+-])?@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}(?![\w-])"
)
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?"
    r"(?:%[\w.]+)?(?![\w:])"
)
CARD = re.compile(
    r"(?<![\w.,+-])(?:\d{4}([ -])\d{4}\1\d{4}\1\d{4}|\d{4}([ -])\d{6}\2\d{4,5}|\d{13,19})"
    r"(?!\w|[.,-]\d)"
)
PHONE = re.compile(
    r"""(?<![\w+.,/$€£-])
    (?:
        (?P<intl>\+\d(?:[ .()-]{0,2}\d){6,14})            # +44 20 7946 0958
      | (?:1[ .-]?)?\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}         # (415) 555-0132
      | (?:1[ .-])?\d{3}(?P<us>[ .-])\d{3}(?P=us)\d{4}     # 415-555-0132, 1-800-555-0199
      | (?P<national>0\d{1,4}(?P<sep>[ ./-])\d{2,8}(?:(?P=sep)\d{2,8}){0,4})  # 020 7946 0958
    )
    (?!\w|[.,/-]\d)""",
    re.VERBOSE,
)


def pii_config(value: Any) -> PiiConfig | None:
    """The effective masking of a model's `mask_pii` value: None when off."""
    if isinstance(value, PiiConfig):
        return value if value.enabled else None
    return PiiConfig() if value is True else None


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group())
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def _is_ip(match: re.Match[str]) -> bool:
    text = match.group().split("%", 1)[0]
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return ":" not in text or any(c.isdigit() for c in text)


def _is_phone(match: re.Match[str]) -> bool:
    national = match.group("national")
    if national:
        digits = sum(c.isdigit() for c in national)
        # 00 is the international prefix (0044 20 7946 0958): up to 15 digits follow it.
        return 10 <= digits <= 17 if national.startswith("00") else 9 <= digits <= 12
    return True


# kind -> (regexes, check of a match); the placeholder is [KIND].
BUILTIN: dict[str, tuple[tuple[re.Pattern[str], ...], Callable[[re.Match[str]], bool]]] = {
    "email": ((EMAIL,), lambda m: True),
    "ip": ((IPV4, IPV6), _is_ip),
    "card": ((CARD,), _is_card),
    "phone": ((PHONE,), _is_phone),
}


class PiiMasker:
    """Masks text, and gold items (each once: counts are per distinct item, not per call)."""

    def __init__(self, config: PiiConfig):
        self.config = config
        self.rules: list[tuple[str, str, re.Pattern[str], Callable[[re.Match[str]], bool]]] = [
            (name, f"[{name.upper()}]", re.compile(p), lambda m: True)
            for name, p in config.patterns.items()
        ]
        for kind in ORDER:
            if kind in config.kinds:
                regexes, check = BUILTIN[kind]
                self.rules += [(kind, f"[{kind.upper()}]", r, check) for r in regexes]
        self.counts: Counter[str] = Counter()
        self.items_masked = 0
        self.examples_masked = 0
        self._seen: dict[int, tuple[GoldItem, GoldItem]] = {}

    def mask(self, text: str, counts: Counter[str] | None = None) -> str:
        """`text` with every match replaced by its placeholder; adds to `counts`."""
        counts = self.counts if counts is None else counts
        for kind, placeholder, regex, check in self.rules:

            def sub(m: re.Match[str], kind: str = kind, ph: str = placeholder, ok=check) -> str:
                if not m.group() or not ok(m):
                    return m.group()
                counts[kind] += 1
                return ph

            text = regex.sub(sub, text)
        return text

    def _value(self, value: Any, counts: Counter[str]) -> Any:
        if isinstance(value, str):
            return self.mask(value, counts)
        if isinstance(value, list | tuple):
            return [self._value(v, counts) for v in value]
        if isinstance(value, dict):  # candidates of a ranking: {id, text}; ids stay
            return {k: v if k == "id" else self._value(v, counts) for k, v in value.items()}
        return value

    def item(self, item: GoldItem, *, example: bool = False) -> GoldItem:
        """The item with its string fields masked (annotations, gold and meta are not sent)."""
        seen = self._seen.get(id(item))
        if seen is not None and seen[0] is item:
            return seen[1]
        counts: Counter[str] = Counter()
        fields = {k: self._value(v, counts) for k, v in item.fields.items()}
        masked = replace(item, fields=fields) if counts else item
        self.counts.update(counts)
        if counts:
            if example:
                self.examples_masked += 1
            else:
                self.items_masked += 1
        self._seen[id(item)] = (item, masked)
        return masked

    def summary(self) -> dict[str, Any]:
        """For the manifest: what was masked and how often, never what the values were."""
        names = [*self.config.patterns, *(k for k in PII_KINDS if k in self.config.kinds)]
        return {
            "kinds": [k for k in PII_KINDS if k in self.config.kinds],
            "patterns": list(self.config.patterns),
            "replacements": {name: self.counts.get(name, 0) for name in names},
            "items_masked": self.items_masked,
            "examples_masked": self.examples_masked,
        }


def masker_for(mask_pii: Any) -> PiiMasker | None:
    config = pii_config(mask_pii)
    return PiiMasker(config) if config is not None else None
