"""Exceptions raised by the Sage Accounting API client.

Pure Python: no Odoo imports. Every exception carries the HTTP status (if any),
Sage's ``x-request-id`` (quote it in support cases) and the parsed error array.
``str()`` of an exception never contains credentials: only the method, path
(without query string), status, request id and Sage's error messages.
"""

import json
import re
from dataclasses import dataclass

__all__ = [
    "SageErrorDetail",
    "SageError",
    "SageAuthError",
    "SageReauthorizationRequired",
    "SageForbiddenError",
    "SageNotFoundError",
    "SageValidationError",
    "SageRateLimitError",
    "SageServerError",
    "SageConnectionError",
    "parse_error_details",
    "redact",
]

# Anything shaped like a JWT (Sage tokens are JWTs) or a bearer credential.
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_SECRET_FIELD_RE = re.compile(
    r"(?i)(\b(?:access_token|refresh_token|client_secret|token)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;}]+"
)

_MAX_EXCERPT = 200


def redact(text):
    """Remove anything that looks like a credential from ``text``."""
    if not text:
        return text
    text = _JWT_RE.sub("[redacted]", text)
    text = _BEARER_RE.sub(r"\1[redacted]", text)
    return _SECRET_FIELD_RE.sub(r"\1[redacted]", text)


@dataclass(frozen=True)
class SageErrorDetail:
    """One entry of Sage's error array (``$severity``, ``$dataCode``, ``$message``, ``$source``)."""

    severity: str = ""
    data_code: str = ""
    message: str = ""
    source: str = ""

    def __str__(self):
        head = self.data_code or self.severity or "error"
        if self.source:
            return f"{head} {self.source}: {self.message}"
        return f"{head}: {self.message}"


def _as_text(value):
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def parse_error_details(body):
    """Parse a Sage error body into a list of :class:`SageErrorDetail`.

    ``body`` may be bytes/str (raw response text) or already-decoded JSON.
    Accepts Sage's array form, a single error object, an ``{"errors": [...]}``
    wrapper and the OAuth form ``{"error": ..., "error_description": ...}``.
    Returns ``[]`` when the body is empty or not JSON.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        if not body.strip():
            return []
        try:
            body = json.loads(body)
        except ValueError:
            return []
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list):
            body = body["errors"]
        elif "error" in body and "$message" not in body:
            return [
                SageErrorDetail(
                    severity="error",
                    data_code=_as_text(body.get("error")),
                    message=redact(_as_text(body.get("error_description"))),
                    source="",
                )
            ]
        else:
            body = [body]
    if not isinstance(body, list):
        return []
    details = []
    for item in body:
        if not isinstance(item, dict):
            continue
        details.append(
            SageErrorDetail(
                severity=_as_text(item.get("$severity", item.get("severity"))),
                data_code=_as_text(item.get("$dataCode", item.get("dataCode"))),
                message=redact(_as_text(item.get("$message", item.get("message")))),
                source=_as_text(item.get("$source", item.get("source"))),
            )
        )
    return details


class SageError(Exception):
    """Base class of every error raised by :mod:`sage_api`.

    Attributes: ``status`` (HTTP status or None), ``request_id`` (Sage's
    x-request-id header or None), ``errors`` (list of SageErrorDetail),
    ``method`` and ``path`` of the failed call (path without query string),
    ``maybe_sent`` (True when a write may have been applied by Sage although
    no success response was received) and ``body_excerpt`` (start of a
    non-JSON body, credentials redacted).
    """

    default_message = "Sage API error"

    def __init__(
        self,
        message=None,
        *,
        status=None,
        request_id=None,
        errors=None,
        method=None,
        path=None,
        maybe_sent=False,
        body_excerpt=None,
    ):
        self.message = redact(message) if message else ""
        self.status = status
        self.request_id = request_id
        self.errors = list(errors or [])
        self.method = method
        self.path = path
        self.maybe_sent = bool(maybe_sent)
        self.body_excerpt = redact(body_excerpt[:_MAX_EXCERPT]) if body_excerpt else None
        super().__init__(self.__str__())

    def __str__(self):
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.method and self.path:
            parts.append(f"{self.method} {self.path}")
        head = " ".join(parts)
        text = self.message or ""
        if self.errors:
            joined = "; ".join(str(e) for e in self.errors)
            text = f"{text}: {joined}" if text else joined
        elif self.body_excerpt and not text:
            text = f"non-JSON response: {self.body_excerpt}"
        if not text:
            text = self.default_message
        out = f"{head}: {text}" if head else text
        if self.request_id:
            out += f" [x-request-id {self.request_id}]"
        if self.maybe_sent:
            out += " (the request may have been applied by Sage)"
        return out

    @property
    def data_codes(self):
        return [e.data_code for e in self.errors if e.data_code]


class SageAuthError(SageError):
    """401 that persisted after one token refresh, or bad client credentials."""

    default_message = "Sage rejected the credentials"


class SageReauthorizationRequired(SageAuthError):
    """Refresh token expired/revoked/already used (``invalid_grant``): reconnect to Sage."""

    default_message = "Sage authorization expired or was revoked; reconnect the Sage account"


class SageForbiddenError(SageError):
    """403: the Sage user lacks the role for this area."""

    default_message = "The Sage user is not allowed to do this"


class SageNotFoundError(SageError):
    """404: unknown path or record."""

    default_message = "Not found in Sage"


class SageValidationError(SageError):
    """422: Sage refused the data. ``fields`` maps ``$source`` to message.

    An empty ``$source`` is reported under ``"base"`` (Sage's own key for
    whole-record errors); several messages for one source are joined by "; ".
    """

    default_message = "Sage refused the data"

    @property
    def fields(self):
        out = {}
        for err in self.errors:
            key = err.source or "base"
            if key in out:
                out[key] = f"{out[key]}; {err.message}"
            else:
                out[key] = err.message
        return out


class SageRateLimitError(SageError):
    """429 still returned after the configured retries. ``retry_after`` in seconds or None."""

    default_message = "Sage rate limit exceeded"

    def __init__(self, message=None, *, retry_after=None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class SageServerError(SageError):
    """5xx (after retries when the call was retryable)."""

    default_message = "Sage server error"


class SageConnectionError(SageError):
    """Network error or timeout (after retries when retryable).

    ``maybe_sent`` is True when the request may have reached Sage (read
    timeout, connection dropped after sending): a write may have been applied.
    """

    default_message = "Could not reach Sage"
