"""Countries (ISO 3166-1 alpha-2) and the shape of their postal codes.

``postal_code_problem`` is the one rule of what a postal code may look like: the ingress
refuses an address that breaks it, the users flow refuses a command that does. The messages
themselves hold only the generic bounds (``topology.messages.users``), so a rule made stricter
later never makes a stored event unreadable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: Every officially assigned ISO 3166-1 alpha-2 code.
# fmt: off
Country = Literal[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
]
# fmt: on


@dataclass(frozen=True)
class PostalRule:
    pattern: re.Pattern[str]
    #: the shape in words, with an example, for the answer that refuses a code
    shape: str


def _rule(pattern: str, shape: str) -> PostalRule:
    return PostalRule(re.compile(pattern, re.IGNORECASE), shape)


FOUR_DIGITS = _rule(r"^\d{4}$", "4 digits, like 1010")
FIVE_DIGITS = _rule(r"^\d{5}$", "5 digits, like 10115")
#: The countries whose postal codes have a shape of their own; each of them requires one.
POSTAL_RULES: dict[str, PostalRule] = {
    "AT": FOUR_DIGITS,
    "AU": FOUR_DIGITS,
    "BE": FOUR_DIGITS,
    "BR": _rule(r"^\d{5}-?\d{3}$", "8 digits, like 01310-100"),
    "CA": _rule(r"^[A-Z]\d[A-Z] ?\d[A-Z]\d$", "letter digit letter, digit letter digit, like K1A 0B1"),
    "CH": FOUR_DIGITS,
    "CZ": _rule(r"^\d{3} ?\d{2}$", "5 digits, like 110 00"),
    "DE": FIVE_DIGITS,
    "DK": FOUR_DIGITS,
    "ES": FIVE_DIGITS,
    "FI": FIVE_DIGITS,
    "FR": FIVE_DIGITS,
    "GB": _rule(r"^(GIR ?0AA|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})$", "an outward and an inward code, like SW1A 1AA"),
    "IN": _rule(r"^\d{6}$", "6 digits, like 110001"),
    "IT": FIVE_DIGITS,
    "JP": _rule(r"^\d{3}-?\d{4}$", "7 digits, like 100-0001"),
    "NL": _rule(r"^\d{4} ?[A-Z]{2}$", "4 digits and 2 letters, like 1012 AB"),
    "NO": FOUR_DIGITS,
    "PL": _rule(r"^\d{2}-\d{3}$", "2 digits, a hyphen, 3 digits, like 00-001"),
    "PT": _rule(r"^\d{4}-\d{3}$", "4 digits, a hyphen, 3 digits, like 1000-001"),
    "SE": _rule(r"^\d{3} ?\d{2}$", "5 digits, like 111 22"),
    "US": _rule(r"^\d{5}(-\d{4})?$", "a ZIP code: 5 digits, or ZIP+4, like 10001 or 10001-1234"),
}
#: Anywhere else a postal code may be left out; one given is 1 to 10 letters, digits, spaces and hyphens.
GENERIC = _rule(r"^[A-Z0-9](?:[A-Z0-9 -]{0,8}[A-Z0-9])?$", "1 to 10 letters, digits, spaces and hyphens")


def postal_code_problem(country: str, postal_code: str) -> str | None:
    """Why ``postal_code`` cannot be one of ``country`` (naming the field), or None when it can."""
    rule = POSTAL_RULES.get(country)
    if not postal_code:
        return f"postal_code: an address in {country} needs one ({rule.shape})" if rule else None
    if not (rule or GENERIC).pattern.fullmatch(postal_code):
        return f"postal_code: {postal_code!r} is no postal code of {country} ({(rule or GENERIC).shape})"
    return None
