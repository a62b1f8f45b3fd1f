"""Small HTTP helpers shared by the OAuth and API clients (no Odoo imports)."""

import json
from decimal import Decimal

import requests

try:  # urllib3 is a hard dependency of requests
    from urllib3.exceptions import (
        ConnectTimeoutError,
        NewConnectionError,
    )
    from urllib3.exceptions import (
        ProxyError as _Urllib3ProxyError,
    )
except ImportError:  # pragma: no cover
    ConnectTimeoutError = NewConnectionError = _Urllib3ProxyError = ()

_NOT_SENT_TYPES = tuple(
    t
    for t in (
        requests.exceptions.ConnectTimeout,
        requests.exceptions.ProxyError,
        requests.exceptions.SSLError,
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
        ConnectTimeoutError,
        NewConnectionError,
        _Urllib3ProxyError,
    )
    if isinstance(t, type)
)


def _chain(exc):
    """Yield ``exc`` and what it wraps (args[0], .reason, __cause__, __context__)."""
    seen = set()
    stack = [exc]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen or not isinstance(cur, BaseException):
            continue
        seen.add(id(cur))
        yield cur
        stack.append(getattr(cur, "reason", None))
        if cur.args:
            stack.append(cur.args[0])
        stack.append(cur.__cause__)
        stack.append(cur.__context__)


def maybe_sent(exc):
    """Whether the request may have reached the server before ``exc`` happened.

    False only when the failure is known to happen before any byte of the
    request left (DNS failure, connection refused, connect timeout, TLS
    handshake, proxy refusal). Everything else (read timeout, connection reset
    or aborted while waiting for the response, unknown errors) is True.
    """
    for item in _chain(exc):
        if isinstance(item, requests.exceptions.ReadTimeout):
            return True
        if _NOT_SENT_TYPES and isinstance(item, _NOT_SENT_TYPES):
            return False
    return True


def describe_network_error(exc):
    """A short, credential-free description of a requests exception."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection error ({type(_innermost(exc)).__name__})"
    return type(exc).__name__


def _innermost(exc):
    last = exc
    for item in _chain(exc):
        last = item
    return last


def _json_default(value):
    if isinstance(value, Decimal):
        # Sage's schemas type money as JSON numbers.
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    isoformat = getattr(value, "isoformat", None)
    if isoformat is not None:  # date / datetime
        return isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(payload):
    """Serialise a request body (Decimal -> JSON number, dates -> ISO strings)."""
    return json.dumps(payload, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def loads(data):
    """Parse a response body; JSON floats become Decimal (never float)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data, parse_float=Decimal)
