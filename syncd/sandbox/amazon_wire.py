"""HTTP details the simulated SP-API operations share: error bodies, list parameters, page tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from syncd.sandbox.amazon_market import AmazonMarket

MARKET = web.AppKey("amazon_market", AmazonMarket)


class BadRequest(Exception):
    """A request Amazon answers with 400 and an ErrorList."""

    def __init__(self, message: str, details: str = "", code: str = "InvalidInput") -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.code = code


def error_body(code: str, message: str, details: str = "") -> dict[str, Any]:
    """`{"errors": [{code, message, details}]}`, Amazon's error envelope."""
    return {"errors": [{"code": code, "message": message, "details": details}]}


def sp_error(status: int, code: str, message: str, details: str = "") -> web.Response:
    """An SP-API error response."""
    return web.json_response(error_body(code, message, details), status=status)


def bad_request(err: BadRequest) -> web.Response:
    """400 for a BadRequest."""
    return sp_error(400, err.code, err.message, err.details)


def query_list(query: Mapping[str, str], name: str) -> list[str]:
    """A comma-separated array parameter (SP-API's `collectionFormat: csv`)."""
    raw = query.get(name)
    if raw is None:
        return []
    return [part.strip() for part in raw.split(",") if part.strip()]


def included(query: Mapping[str, str], allowed: Iterable[str], default: set[str], code: str) -> set[str]:
    """The `includedData` datasets, checked against the operation's enum."""
    values = query_list(query, "includedData")
    allowed_set = set(allowed)
    unknown = [v for v in values if v not in allowed_set]
    if unknown:
        raise BadRequest("Invalid Input", f"includedData has unknown value(s): {', '.join(unknown)}", code)
    return set(values) or set(default)


def int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int, code: str) -> int:
    """An integer parameter within [low, high]."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("Invalid Input", f"{name} must be an integer", code) from None
    if not low <= value <= high:
        raise BadRequest("Invalid Input", f"{name} must be between {low} and {high}", code)
    return value


def query_hash(query: Mapping[str, str], ignore: Iterable[str]) -> str:
    """Fingerprint of the parameters a page token is bound to."""
    skip = set(ignore)
    items = sorted((k, v) for k, v in query.items() if k not in skip)
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def make_token(state: dict[str, Any]) -> str:
    """An opaque page token."""
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def read_token(token: str, code: str) -> dict[str, Any]:
    """Decode a page token; BadRequest when it was not one of ours."""
    try:
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        raise BadRequest("Invalid Input", "The pagination token is invalid.", code) from None
    if not isinstance(state, dict):
        raise BadRequest("Invalid Input", "The pagination token is invalid.", code)
    return state
