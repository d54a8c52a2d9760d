"""A fuzz pass over every body, query and path of every operation, against the real app on the real stack.

Beyond schemathesis (which keeps to what the document describes), this throws what a hostile
client would: random bytes, invalid UTF-8 inside strings, lone surrogates, NUL, numbers past
any integer or float, nesting as deep as the size limit allows, duplicate keys, and the
wrong content types. No answer may be a 5xx, and every refusal is problem+json.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingress import routes
from ingress.auth.accounts import SCOPES
from ingress.auth.tokens import KeyRing, Principal
from ingress.bus import KafkaBus
from ingress.routes import Operation
from sinks.search import ensure_indexes
from tests.support.api import Api
from topology.settings import Settings

pytestmark = pytest.mark.stack
OPERATIONS = routes.OPERATIONS
#: Examples in all, shared out evenly between the operations.
EXAMPLES = 400
MAX_BODY = 16 * 1024

#: Values that break naive handling, as JSON text (what a client may put in place of any value).
NASTY_JSON = [
    '"\\ud800"',  # a lone surrogate
    '"\\udfff\\ud800"',
    '"a\\u0000b"',  # NUL
    '"\\\\u0000"',  # not a NUL: an escaped backslash
    "1" + "0" * 400,  # past any integer type
    "1e400",
    "-1e400",
    "-0",
    "1.5",
    "18446744073709551616",
    "-9223372036854775809",
    "null",
    "true",
    "[]",
    "{}",
    '""',
    '"' + "x" * 5000 + '"',
]
#: Raw bytes that are not UTF-8, to put inside a JSON string.
BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=latin-1",
    "application/JSON",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/problem+json",
    "",
    "\x00",
]


def _fields(op: Operation) -> list[str]:
    struct = op.request or op.query
    return [f.encode_name for f in msgspec.structs.fields(struct)] if struct else []


def _example(op: Operation) -> dict[str, Any]:
    """A body shaped like the operation's (its field names), with plausible values."""
    plausible: dict[str, Any] = {
        "lines": [{"sku": "mug", "quantity": 1}],
        "payment_token": "tok_visa",
        "email": "fuzz@example.com",
        "password": "correct horse",
        "name": "Fuzz",
        "title": "T",
        "price_amount": 100,
        "currency": "EUR",
        "delta": 1,
        "amount": 100,
        "reason": "r",
        "refresh_token": "rt_x",
        "phone": "+4930123456",
    }
    return {name: plausible.get(name, "x") for name in _fields(op)}


@st.composite
def json_bodies(draw: st.DrawFn, op: Operation) -> bytes:
    """JSON (mostly) of the operation's shape with one part replaced by something hostile."""
    body = _example(op)
    kind = draw(st.sampled_from(["nasty", "bad utf-8", "duplicate", "nesting", "random json", "bytes", "huge list"]))
    names = list(body) or ["x"]
    name = draw(st.sampled_from(names))
    text = json.dumps(body)
    if kind == "nasty":
        value = draw(st.sampled_from(NASTY_JSON))
        others = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in body.items() if k != name)
        return ("{" + (others + ", " if others else "") + f"{json.dumps(name)}: {value}" + "}").encode()
    if kind == "bad utf-8":
        junk = draw(st.sampled_from(BAD_UTF8))
        return text.encode().replace(b'"', b'"' + junk, 1) if draw(st.booleans()) else b'{"' + junk + b'": 1}'
    if kind == "duplicate":
        again = draw(st.sampled_from(NASTY_JSON))
        return (text[:-1] + (", " if body else "") + f"{json.dumps(name)}: {again}" + "}").encode()
    if kind == "nesting":
        depth = draw(st.integers(min_value=1, max_value=MAX_BODY // 2 - 20))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = opener * depth + "1" + closer * depth
        if len(inner) > MAX_BODY - 50:
            inner = "[" * (MAX_BODY // 2 - 20) + "]" * (MAX_BODY // 2 - 20)
        return ("{" + f"{json.dumps(name)}: {inner}" + "}").encode()
    if kind == "random json":
        leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
        value = draw(
            st.recursive(
                leaf,
                lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                max_leaves=20,
            )
        )
        return json.dumps({**body, name: value}).encode()
    if kind == "huge list":
        return json.dumps({**body, name: [body.get(name, 1)] * draw(st.integers(0, 2000))}).encode()[: MAX_BODY + 10]
    return draw(st.binary(max_size=512))


def form_bodies() -> st.SearchStrategy[bytes]:
    pairs = st.lists(
        st.tuples(
            st.sampled_from(["grant_type", "client_id", "client_secret", "scope", "x"]),
            st.text(max_size=80) | st.sampled_from(["client_credentials", "%ff%fe", "%00", "%ed%a0%80", "a" * 300]),
        ),
        max_size=6,
    )
    return pairs.map(
        lambda ps: "&".join(f"{k}={v if v.startswith('%') else quote(v)}" for k, v in ps).encode()
    ) | st.binary(max_size=300)


#: What a hostile searcher types: query syntax, regex, wildcards, bidi controls, combining marks, long words.
SEARCH_TEXT = [
    "title:*",
    "AND OR (",
    "/.*/",
    "a* ?b [c TO d] {e TO f} \\",
    'name:"x" || !y ~2 ^3',
    "\u202eevil",
    "e\u0301" * 40,
    "ß" * 200,
    "🚀" * 60,
    "x" * 199,
    "price_asc",
    "brand,price",
    "2026-01-01T00:00:00Z",
    "2026-13-45T99:99:99+25:00",
]
QUERY_VALUES = (
    st.sampled_from(
        ["%ff%fe", "%00", "%ed%a0%80", "1" + "0" * 400, "1e400", "-1", "nan", "inf", "", "%", "%%", "a" * 3000]
    )
    | st.text(alphabet=string.printable, max_size=30).map(quote)
    | st.sampled_from(SEARCH_TEXT).map(quote)
)


@st.composite
def queries(draw: st.DrawFn, op: Operation) -> str:
    names = [*_fields(op), "x", "from", "cursor"] if op.query else ["x", "wait"]
    pairs = draw(st.lists(st.tuples(st.sampled_from(names), QUERY_VALUES), max_size=4))
    return "&".join(f"{k}={v}" for k, v in pairs)


PATH_VALUES = st.sampled_from(
    ["mug", "o_x", "%00", "%ff%fe", "%ed%a0%80", "a" * 300, "..", "%2e%2e", "x%2Fy"]
) | st.text(alphabet=string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=70)


@st.composite
def requests(draw: st.DrawFn, op: Operation) -> tuple[Operation, str, str, bytes, dict[str, str], str]:
    path = re.sub(r"\{\w+\}", lambda _: draw(PATH_VALUES), op.path)  # every path parameter
    body = b""
    headers: dict[str, str] = {}
    if op.request is not None or draw(st.booleans()):
        body = draw(form_bodies() if op.media == routes.FORM else json_bodies(op))
        headers["Content-Type"] = draw(st.sampled_from([op.media, op.media, *CONTENT_TYPES]))
    query = draw(queries(op)) if op.query is not None or draw(st.integers(0, 4)) == 0 else ""
    who = draw(st.sampled_from(["customer", "partner", "support", "admin", "none", "garbage"]))
    if draw(st.integers(0, 9)) == 0:
        headers["Idempotency-Key"] = draw(st.sampled_from(["", "k" * 300, "k1", "\x7f"]))
    return op, path, query, body, headers, who


@pytest.fixture
def fuzz_api(private: Settings) -> Iterator[Api]:
    roomy = {
        "rate_address_burst": 100_000,
        "rate_credentials_burst": 100_000,
        "rate_burst": 100_000,
        "password_hash_burst": 100_000,
        "max_body_bytes": MAX_BODY,
    }
    settings_ = private.model_copy(update=roomy)
    bus = KafkaBus(settings_)
    api = Api(settings_, KeyRing(settings_.jwt_issuer, settings_.jwt_audience), bus)
    ensure_indexes(api.search, settings_.search_prefix)  # searches reach the node's query parsing, not a 404
    yield api
    bus.close()
    api.reads.close()


def test_no_input_gets_a_server_error(fuzz_api: Api) -> None:
    partner = fuzz_api.keys.issue(
        Principal("acme", "partner", frozenset({"partner"}), frozenset(SCOPES)), timedelta(minutes=10)
    )
    tokens = {
        "customer": fuzz_api.token("ann", "customer"),
        "support": fuzz_api.token("sue", "support"),
        "admin": fuzz_api.token("root", "admin"),
        "partner": partner,
        "garbage": "a.b.c",
    }

    def check(case: tuple[Operation, str, str, bytes, dict[str, str], str]) -> None:
        op, path, query, body, headers, who = case
        if who in tokens:
            headers = {**headers, "Authorization": f"Bearer {tokens[who]}"}
        answer = fuzz_api.client.simulate_request(op.method, path, query_string=query, body=body, headers=headers)
        where = f"{op.method} {path}?{query} {headers} {body[:300]!r}"
        assert answer.status_code < 500, f"{where} -> {answer.status_code} {answer.text[:300]}"
        if answer.status_code >= 400:
            assert answer.headers["Content-Type"] == "application/problem+json", where

    # Each operation its own share of the examples: one drawn at random could go unfuzzed.
    each = settings(
        max_examples=EXAMPLES // len(OPERATIONS), deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    for op in OPERATIONS:
        each(given(case=requests(op))(check))()
