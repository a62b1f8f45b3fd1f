"""HTTP client for Sage Business Cloud Accounting API v3.1.

Pure Python (requests), no Odoo imports.

Return values: operations return Sage's JSON as plain dicts/lists, untouched
except that JSON *numbers* with a fraction are parsed as ``Decimal`` (never
float). Sage sends most money values as numeric strings (``"1250.0"``); they
are left as strings — convert them with :func:`to_decimal`.

Retries: 429 is retried for every method (honouring ``Retry-After``); 5xx and
network errors are retried for GET, and for POST/PUT/DELETE only when the
body carries an ``idempotency_id``. A 401 triggers one call of the caller's
``refresh`` callable and one retry.

Logging: method, path (no query string), status, duration and x-request-id;
never headers or bodies.
"""

import hashlib
import inspect
import logging
import random
import threading
import time
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote, urlsplit

import requests

from . import _transport
from .exceptions import (
    SageAuthError,
    SageConnectionError,
    SageError,
    SageForbiddenError,
    SageNotFoundError,
    SageRateLimitError,
    SageServerError,
    SageValidationError,
    parse_error_details,
)

__all__ = [
    "SageClient",
    "make_idempotency_id",
    "to_decimal",
    "format_timestamp",
    "DEFAULT_API_URL",
    "INVOICE_SYNC_ATTRIBUTES",
]

_logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.accounting.sage.com/v3.1"
DEFAULT_USER_AGENT = "sage_one_connector/18.0 (Odoo; python-requests)"

INVOICE_SYNC_ATTRIBUTES = (
    "status",
    "outstanding_amount",
    "total_paid",
    "last_paid",
    "total_amount",
    "void_reason",
    "updated_at",
)
ARTEFACT_SEARCH_ATTRIBUTES = (
    "status",
    "reference",
    "contact",
    "date",
    "total_amount",
    "outstanding_amount",
    "updated_at",
)
PAYMENT_SYNC_ATTRIBUTES = (
    "transaction_type",
    "contact",
    "date",
    "total_amount",
    "allocated_artefacts",
    "updated_at",
)
ALLOCATION_SYNC_ATTRIBUTES = (
    "transaction_type",
    "contact",
    "date",
    "allocated_artefacts",
    "updated_at",
)
CONTACT_ATTRIBUTES = ("name", "reference", "email", "contact_types", "currency")

# Paths that are not scoped to a business (no X-Business header).
_UNSCOPED_PREFIXES = ("/businesses", "/user")

_RETRYABLE_WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH")


def make_idempotency_id(*parts):
    """Deterministic Sage ``idempotency_id``: 32 lowercase hex chars.

    ``make_idempotency_id(db_uuid, "account.move", move.id, attempt)``; parts
    are converted with ``str`` and joined with ``":"`` before hashing (sha256,
    truncated to 32 hex chars — the hyphen-less GUID shape Sage asks for).
    """
    if not parts:
        raise ValueError("make_idempotency_id needs at least one part")
    joined = ":".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def to_decimal(value, default=None):
    """Parse a Sage money/quantity value (string, int, Decimal) into Decimal."""
    if value is None or value == "":
        return default
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"Not a decimal value: {value!r}") from None


def format_timestamp(value):
    """Format a datetime for ``updated_or_created_since``/``deleted_since``.

    Naive datetimes are taken as UTC (Odoo stores naive UTC). A ``date``
    becomes midnight UTC. Output: ``YYYY-MM-DDThh:mm:ss+00:00``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
    elif isinstance(value, date):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    else:
        raise TypeError(f"expected datetime, date or str, got {type(value).__name__}")
    return value.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _format_date(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.date().isoformat()
    return value.isoformat()


def _attributes(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return ",".join(value)


def _path_id(value):
    if value is None or value == "":
        raise ValueError("an id is required")
    return quote(str(value), safe="")


def _parse_retry_after(value, now=None):
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        now = now or datetime.now(timezone.utc)
        seconds = (when - now).total_seconds()
    return max(0.0, seconds)


class SageClient:
    """Thread-safe client for one Sage user token (and optionally one business).

    :param api_url: base URL, e.g. ``https://api.accounting.sage.com/v3.1``
    :param access_token: current access token (str)
    :param refresh: callable returning a fresh access token (str). Called at
        most once per request, after a 401. If it accepts one positional
        argument it receives the access token that was refused, so the caller
        can tell whether another worker already refreshed (then return the
        stored token instead of refreshing again). It may raise
        SageReauthorizationRequired.
    :param business_id: sent as ``X-Business`` on every business-scoped call
        (all paths except ``/businesses`` and ``/user``). Without it Sage uses
        the user's lead business.
    :param timeout: requests timeout, ``(connect, read)`` seconds
    :param max_retries: retries after 429/5xx/network errors (not counting
        the single retry after a token refresh)
    :param backoff, max_backoff: exponential backoff base and cap (seconds);
        waits are ``min(max_backoff, backoff * 2**n)`` with jitter in the
        upper half of that interval
    :param max_retry_after: a 429 ``Retry-After`` longer than this is not
        waited for; SageRateLimitError is raised with ``retry_after`` set
    :param sleep: injected for tests
    :param session_factory: builds one requests.Session per thread
    """

    def __init__(
        self,
        api_url=DEFAULT_API_URL,
        *,
        access_token,
        refresh=None,
        business_id=None,
        timeout=(5, 30),
        max_retries=4,
        backoff=0.5,
        max_backoff=30,
        max_retry_after=120,
        sleep=time.sleep,
        session_factory=requests.Session,
        user_agent=DEFAULT_USER_AGENT,
        random_func=random.random,
    ):
        if not access_token or not isinstance(access_token, str):
            raise ValueError("access_token must be a non-empty string")
        if refresh is not None and not callable(refresh):
            raise TypeError("refresh must be callable")
        self.api_url = api_url.rstrip("/")
        self._api_parts = urlsplit(self.api_url)
        self._access_token = access_token
        self._refresh = refresh
        self._refresh_takes_token = _accepts_one_arg(refresh) if refresh else False
        self.business_id = business_id
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._session_factory = session_factory
        self.user_agent = user_agent
        self._random = random_func
        self._local = threading.local()
        self._sessions = []
        self._sessions_lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._calls_lock = threading.Lock()
        self._calls = 0

    def __repr__(self):
        return f"SageClient(api_url={self.api_url!r}, business_id={self.business_id!r})"

    # -- lifecycle ---------------------------------------------------------

    def close(self):
        """Close every per-thread session created so far."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- state -------------------------------------------------------------

    @property
    def calls(self):
        """Number of HTTP requests sent to the API so far (retries included)."""
        with self._calls_lock:
            return self._calls

    @property
    def access_token(self):
        """The access token currently in use (after any refresh)."""
        with self._token_lock:
            return self._access_token

    def set_access_token(self, token):
        """Replace the access token (e.g. after the caller refreshed it)."""
        if not token or not isinstance(token, str):
            raise ValueError("access_token must be a non-empty string")
        with self._token_lock:
            self._access_token = token

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _count_call(self):
        with self._calls_lock:
            self._calls += 1

    def _renew_token(self, refused):
        """Get a usable token after ``refused`` got a 401. Thread-safe.

        If another thread of this client already swapped the token, reuse it
        without calling ``refresh``.
        """
        with self._refresh_lock:
            with self._token_lock:
                current = self._access_token
            if current != refused:
                return current
            new = self._refresh(refused) if self._refresh_takes_token else self._refresh()
            if not new or not isinstance(new, str):
                raise SageAuthError("The refresh callback returned no access token")
            with self._token_lock:
                self._access_token = new
            return new

    # -- URL handling ------------------------------------------------------

    def _split_path(self, path):
        """Return (path_relative_to_api_url, query_params) for a path or $next link."""
        if not path:
            raise ValueError("path is required")
        parts = urlsplit(path)
        if parts.scheme or parts.netloc:
            if (parts.scheme, parts.netloc) != (self._api_parts.scheme, self._api_parts.netloc):
                # Never send the bearer token to another host.
                raise SageError(f"Refusing to follow a link to another host: {parts.netloc}")
        rel = parts.path or "/"
        base_path = self._api_parts.path.rstrip("/")
        if base_path and (rel == base_path or rel.startswith(base_path + "/")):
            rel = rel[len(base_path) :] or "/"
        if not rel.startswith("/"):
            rel = "/" + rel
        return rel, parse_qsl(parts.query, keep_blank_values=True)

    @staticmethod
    def _is_business_scoped(path):
        for prefix in _UNSCOPED_PREFIXES:
            if path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "?"):
                return False
        return True

    # -- core request ------------------------------------------------------

    def request(self, method, path, *, params=None, body=None, retry_writes=False):
        """Send one logical request (with retries) and return the decoded JSON.

        ``body`` is a ready (already namespaced) dict. ``retry_writes`` allows
        retrying a write after 5xx/network errors (set when the body carries
        an idempotency_id). Returns None for an empty response body.
        """
        method = method.upper()
        rel_path, link_params = self._split_path(path)
        query = list(link_params)
        if params:
            present = {k for k, _v in query}
            for key, value in params.items():
                if value is None or key in present:
                    continue
                if isinstance(value, bool):
                    value = "true" if value else "false"
                query.append((key, value))
        url = self.api_url + rel_path
        headers = {
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        if self.business_id and self._is_business_scoped(rel_path):
            headers["X-Business"] = self.business_id
        data = None
        if body is not None:
            data = _transport.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        retry_on_failure = method in ("GET", "HEAD") or bool(retry_writes)

        attempt = 0  # retries used (429/5xx/network)
        refreshed = False
        while True:
            token = self.access_token
            headers["Authorization"] = "Bearer " + token
            self._count_call()
            started = time.monotonic()
            try:
                response = self._session().request(
                    method,
                    url,
                    params=query or None,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.exceptions.RequestException as exc:
                sent = _transport.maybe_sent(exc)
                what = _transport.describe_network_error(exc)
                if retry_on_failure and attempt < self.max_retries:
                    delay = self._backoff_delay(attempt)
                    attempt += 1
                    _logger.warning(
                        "Sage %s %s failed (%s); retry %d/%d in %.1fs",
                        method,
                        rel_path,
                        what,
                        attempt,
                        self.max_retries,
                        delay,
                    )
                    self._sleep(delay)
                    continue
                _logger.warning("Sage %s %s failed: %s", method, rel_path, what)
                raise SageConnectionError(
                    f"Could not reach Sage: {what}",
                    method=method,
                    path=rel_path,
                    maybe_sent=sent,
                ) from None

            status = response.status_code
            request_id = response.headers.get("x-request-id")
            _logger.debug(
                "Sage %s %s -> %s in %.0f ms (x-request-id=%s)",
                method,
                rel_path,
                status,
                (time.monotonic() - started) * 1000,
                request_id,
            )
            if 200 <= status < 300:
                self._check_business_echo(response, rel_path)
                return self._decode(response, method, rel_path)

            if status == 401 and self._refresh is not None and not refreshed:
                refreshed = True
                _logger.info(
                    "Sage %s %s -> 401 (x-request-id=%s); refreshing the access token",
                    method,
                    rel_path,
                    request_id,
                )
                self._renew_token(token)
                continue

            if status == 429 and attempt < self.max_retries:
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
                if (
                    retry_after is not None
                    and self.max_retry_after is not None
                    and retry_after > self.max_retry_after
                ):
                    raise self._error(response, method, rel_path, retry_after=retry_after)
                delay = retry_after if retry_after is not None else self._backoff_delay(attempt)
                attempt += 1
                _logger.warning(
                    "Sage %s %s -> 429 (x-request-id=%s); retry %d/%d in %.1fs",
                    method,
                    rel_path,
                    request_id,
                    attempt,
                    self.max_retries,
                    delay,
                )
                self._sleep(delay)
                continue

            if status >= 500 and retry_on_failure and attempt < self.max_retries:
                delay = self._backoff_delay(attempt)
                attempt += 1
                _logger.warning(
                    "Sage %s %s -> %s (x-request-id=%s); retry %d/%d in %.1fs",
                    method,
                    rel_path,
                    status,
                    request_id,
                    attempt,
                    self.max_retries,
                    delay,
                )
                self._sleep(delay)
                continue

            _logger.warning(
                "Sage %s %s -> %s (x-request-id=%s)", method, rel_path, status, request_id
            )
            raise self._error(response, method, rel_path)

    def _backoff_delay(self, attempt):
        ceiling = min(self.max_backoff, self.backoff * (2**attempt))
        # "equal jitter": somewhere in the upper half of the interval
        return ceiling / 2 + self._random() * ceiling / 2

    def _check_business_echo(self, response, rel_path):
        echoed = response.headers.get("X-Business")
        if echoed and self.business_id and echoed != self.business_id:
            _logger.warning(
                "Sage answered %s for business %s instead of %s",
                rel_path,
                echoed,
                self.business_id,
            )

    @staticmethod
    def _decode(response, method, rel_path):
        content = response.content
        if not content or not content.strip():
            return None
        try:
            return _transport.loads(content)
        except ValueError:
            raise SageError(
                "Sage returned a non-JSON success response",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
                method=method,
                path=rel_path,
                body_excerpt=response.text,
            ) from None

    @staticmethod
    def _error(response, method, rel_path, retry_after=None):
        status = response.status_code
        details = parse_error_details(response.content)
        kwargs = {
            "status": status,
            "request_id": response.headers.get("x-request-id"),
            "errors": details,
            "method": method,
            "path": rel_path,
        }
        if not details and response.content:
            kwargs["body_excerpt"] = response.text
        if status == 401:
            return SageAuthError(**kwargs)
        if status == 403:
            return SageForbiddenError(**kwargs)
        if status == 404:
            return SageNotFoundError(**kwargs)
        if status == 422:
            return SageValidationError(**kwargs)
        if status == 429:
            if retry_after is None:
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
            return SageRateLimitError(retry_after=retry_after, **kwargs)
        if status >= 500:
            # The request reached Sage; a write may have been applied (Sage: a 500
            # after POST may still have created the record).
            return SageServerError(maybe_sent=True, **kwargs)
        return SageError(**kwargs)

    # -- low level verbs ---------------------------------------------------

    def get(self, path, params=None):
        return self.request("GET", path, params=params)

    def _write(self, method, path, namespace, body, idempotency_id):
        if not namespace:
            raise ValueError("namespace is required (e.g. 'sales_invoice')")
        inner = dict(body or {})
        if idempotency_id:
            inner["idempotency_id"] = idempotency_id
        return self.request(
            method,
            path,
            body={namespace: inner},
            retry_writes=bool(inner.get("idempotency_id")),
        )

    def post(self, path, namespace, body, idempotency_id=None):
        """POST ``{namespace: body}``; retried on 5xx/network only with an idempotency_id."""
        return self._write("POST", path, namespace, body, idempotency_id)

    def put(self, path, namespace, body, idempotency_id=None):
        """PUT ``{namespace: body}``; retried on 5xx/network only with an idempotency_id."""
        return self._write("PUT", path, namespace, body, idempotency_id)

    def delete(self, path, params=None):
        """DELETE (for artefacts: void). Not retried after 5xx/network errors."""
        return self.request("DELETE", path, params=params)

    def iterate(self, path, params=None, attributes=None, items_per_page=200):
        """Yield every item of a list endpoint, following ``$next`` links.

        Query parameters missing from a ``$next`` link (filters, attributes)
        are carried over from the first request.
        """
        base = dict(params or {})
        attrs = _attributes(attributes)
        if attrs:
            base["attributes"] = attrs
        if items_per_page:
            base["items_per_page"] = int(items_per_page)
        next_path = path
        seen = set()
        while next_path:
            page = self.request("GET", next_path, params=base)
            if isinstance(page, list):  # not paginated
                yield from page
                return
            if not isinstance(page, dict):
                return
            items = page.get("$items") or []
            yield from items
            following = page.get("$next")
            if not following or not items or following in seen:
                return
            seen.add(following)
            next_path = following

    # -- user / businesses -------------------------------------------------

    def list_businesses(self, product_family="sbc_accounting"):
        params = {"product_family": product_family} if product_family else None
        return list(self.iterate("/businesses", params=params))

    def get_business(self, business_id):
        return self.get(f"/businesses/{_path_id(business_id)}")

    def get_user(self):
        return self.get("/user")

    def get_financial_settings(self):
        return self.get("/financial_settings")

    # -- contacts ----------------------------------------------------------

    def find_contacts_by_email(self, email, attributes=CONTACT_ATTRIBUTES):
        if not email:
            return []
        return list(
            self.iterate(
                "/contacts",
                params={"email": email, "contact_type_id": "CUSTOMER"},
                attributes=attributes,
            )
        )

    def create_contact(self, contact, idempotency_id):
        return self.post("/contacts", "contact", contact, idempotency_id=idempotency_id)

    def get_contact(self, contact_id):
        return self.get(f"/contacts/{_path_id(contact_id)}")

    # -- reference data ----------------------------------------------------

    def list_ledger_accounts(
        self,
        visible_in="sales",
        attributes=(
            "name",
            "display_name",
            "nominal_code",
            "ledger_account_type",
            "visible_in_sales",
        ),
    ):
        params = {"visible_in": visible_in} if visible_in else None
        return list(self.iterate("/ledger_accounts", params=params, attributes=attributes))

    def list_tax_rates(self, attributes=("name", "percentage", "is_visible")):
        return list(self.iterate("/tax_rates", attributes=attributes))

    def list_currencies(self):
        return list(self.iterate("/currencies"))

    # -- sales invoices ----------------------------------------------------

    def create_sales_invoice(self, invoice, idempotency_id):
        return self.post("/sales_invoices", "sales_invoice", invoice, idempotency_id=idempotency_id)

    def get_sales_invoice(self, invoice_id, attributes=None):
        params = {"mark_as_sent": False}
        if attributes:
            params["attributes"] = _attributes(attributes)
        return self.get(f"/sales_invoices/{_path_id(invoice_id)}", params=params)

    def search_sales_invoices(self, search, attributes=ARTEFACT_SEARCH_ATTRIBUTES):
        return list(
            self.iterate("/sales_invoices", params={"search": search}, attributes=attributes)
        )

    def void_sales_invoice(self, invoice_id, reason):
        return self.delete(
            f"/sales_invoices/{_path_id(invoice_id)}", params={"void_reason": reason}
        )

    # -- sales credit notes ------------------------------------------------

    def create_sales_credit_note(self, credit_note, idempotency_id):
        return self.post(
            "/sales_credit_notes", "sales_credit_note", credit_note, idempotency_id=idempotency_id
        )

    def get_sales_credit_note(self, credit_note_id, attributes=None):
        params = {"mark_as_sent": False}
        if attributes:
            params["attributes"] = _attributes(attributes)
        return self.get(f"/sales_credit_notes/{_path_id(credit_note_id)}", params=params)

    def search_sales_credit_notes(self, search, attributes=ARTEFACT_SEARCH_ATTRIBUTES):
        return list(
            self.iterate("/sales_credit_notes", params={"search": search}, attributes=attributes)
        )

    def void_sales_credit_note(self, credit_note_id, reason):
        return self.delete(
            f"/sales_credit_notes/{_path_id(credit_note_id)}", params={"void_reason": reason}
        )

    # -- allocations -------------------------------------------------------

    def create_contact_allocation(self, contact_id, allocations, date, idempotency_id):
        """Allocate artefacts against each other (e.g. credit note to invoice).

        ``allocations``: iterable of ``(artefact_id, amount)``; invoices
        positive, credit notes/payments on account negative; amounts must sum
        to zero (checked here, ValueError otherwise).
        """
        lines = []
        total = Decimal(0)
        for artefact_id, amount in allocations:
            amount = to_decimal(amount)
            if not artefact_id or amount is None:
                raise ValueError("each allocation needs an artefact id and an amount")
            total += amount
            lines.append({"artefact_id": artefact_id, "amount": amount})
        if len(lines) < 2:
            raise ValueError("an allocation needs at least two artefacts")
        if total != 0:
            raise ValueError(f"allocated amounts must sum to zero (got {total})")
        body = {
            "transaction_type_id": "CUSTOMER_ALLOCATION",
            "contact_id": contact_id,
            "allocated_artefacts": lines,
        }
        if date is not None:
            body["date"] = _format_date(date)
        return self.post(
            "/contact_allocations", "contact_allocation", body, idempotency_id=idempotency_id
        )

    # -- incremental sync --------------------------------------------------

    def iter_changed_since(self, path, since, attributes=None, deleted=False, sort="updated_at"):
        """Yield items of ``path`` created/updated (or, with ``deleted=True``,
        deleted) since ``since``. ``updated_or_created_since`` is inclusive:
        de-duplicate by id."""
        key = "deleted_since" if deleted else "updated_or_created_since"
        params = {key: format_timestamp(since)}
        if sort and not deleted:
            params["sort"] = sort
        return self.iterate(path, params=params, attributes=attributes)

    def iter_sales_invoices_changed_since(
        self, since, attributes=INVOICE_SYNC_ATTRIBUTES, deleted=False
    ):
        return self.iter_changed_since("/sales_invoices", since, attributes, deleted=deleted)

    def iter_sales_credit_notes_changed_since(
        self, since, attributes=INVOICE_SYNC_ATTRIBUTES, deleted=False
    ):
        return self.iter_changed_since("/sales_credit_notes", since, attributes, deleted=deleted)

    def iter_contact_payments_changed_since(
        self, since, attributes=PAYMENT_SYNC_ATTRIBUTES, deleted=False
    ):
        return self.iter_changed_since("/contact_payments", since, attributes, deleted=deleted)

    def iter_contact_allocations_changed_since(
        self, since, attributes=ALLOCATION_SYNC_ATTRIBUTES, deleted=False
    ):
        return self.iter_changed_since("/contact_allocations", since, attributes, deleted=deleted)


def _accepts_one_arg(func):
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    positional = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()):
        return True
    return len(positional) >= 1
