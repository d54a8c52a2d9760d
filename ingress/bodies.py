"""What a request brings in, checked at the edge: JSON bodies, the OAuth2 form, query strings, SKUs in paths.

This is the WAF role: content type and size first, then the strict schema
(``schemas.py``); whatever does not hold is a problem that says exactly what is wrong.
Bytes that are not UTF-8 (inside a string too) are 400; a NUL in any string is 422, since no
store the command reaches can hold it.
"""

from __future__ import annotations

import re
from typing import TypeVar
from urllib.parse import parse_qs

import falcon
import msgspec

from ingress.problems import Problem

S = TypeVar("S", bound=msgspec.Struct)
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
FORM_MAX_BYTES = 4096
SKU_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: ``\u0000`` in JSON text: a backslash that is not itself escaped, then u0000 (JSON cannot hold a raw NUL).
ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)


def _media_type(req: falcon.Request) -> str:
    return (req.content_type or "").split(";")[0].strip()


def read_body(req: falcon.Request, schema: type[S], max_bytes: int) -> tuple[S, bytes]:
    """The body as ``schema`` (strict) and its bytes, or a problem saying exactly what is wrong."""
    if not _media_type(req).lower() == JSON:
        raise Problem(415, "unsupported-media-type", "send application/json", f"got {req.content_type or 'nothing'}")
    if req.content_length is not None and req.content_length > max_bytes:
        raise Problem(413, "too-large", "body too large", f"at most {max_bytes} bytes")
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Problem(413, "too-large", "body too large", f"at most {max_bytes} bytes")
    try:
        body = msgspec.json.decode(raw, type=schema)
    except msgspec.ValidationError as err:
        raise Problem(422, "invalid-body", "the body does not match the schema", str(err)) from None
    except msgspec.DecodeError as err:
        raise Problem(400, "malformed-body", "the body is not valid JSON", str(err)) from None
    except UnicodeDecodeError as err:  # msgspec checks UTF-8 inside strings as it builds them
        raise Problem(400, "malformed-body", "the body is not valid UTF-8", str(err)) from None
    if ESCAPED_NUL.search(raw):
        raise Problem(422, "invalid-body", "the body does not match the schema", "text may not hold NUL (\\u0000)")
    return body, raw


def read_form(req: falcon.Request) -> dict[str, str]:
    """A form-encoded body (the first value of each field), with OAuth2's error codes for what is wrong."""
    if _media_type(req) != FORM:
        raise Problem(415, "unsupported-media-type", f"send {FORM}")
    raw = req.bounded_stream.read(FORM_MAX_BYTES + 1)
    if len(raw) > FORM_MAX_BYTES:
        raise Problem(413, "too-large", "body too large", f"at most {FORM_MAX_BYTES} bytes")
    try:
        return {k: v[0] for k, v in parse_qs(raw.decode(), strict_parsing=False).items()}
    except UnicodeDecodeError:
        raise Problem(400, "invalid_request", error="invalid_request", title="the form is not UTF-8") from None


def read_query(req: falcon.Request, schema: type[S]) -> S:
    """The query string as ``schema`` (text converted to the fields' types), or 400."""
    try:
        return msgspec.convert(req.params, schema, strict=False)
    except msgspec.ValidationError as err:
        raise Problem(400, "invalid-query", "the query does not match the schema", str(err)) from None


def known_sku(sku: str) -> str:
    """``sku`` when it could name a product; a SKU no product can have is not found."""
    if not SKU_PATTERN.fullmatch(sku):
        raise Problem(404, "not-found", "not found")
    return sku
