"""HTTP server, router, fault injection and the public :class:`SageSandbox` class."""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from . import oauth, schema
from .store import (
    ARTEFACT_KINDS,
    ARTEFACT_STATUSES,
    PAYMENT_METHODS,
    SageError,
    State,
    error_item,
    link,
    not_found,
    parse_date,
    parse_since,
    render,
)

API_PREFIX = "/v3.1"
ADMIN_PREFIX = "/_sandbox"
AUTHORIZE_PATH = "/oauth2/auth/central"
TOKEN_PATH = "/token"
REVOKE_PATH = "/revoke"

LIST_BASE_KEYS = ("id", "displayed_as", "$path")


class _Drop(Exception):
    """Close the TCP connection without a response."""


class Ctx:
    """Per-request context handed to API route handlers."""

    def __init__(self, sb: SageSandbox, method: str, path: str, params: dict, body: Any,
                 path_params: dict, user_id: str, business_id: str | None, scope: str):
        self.sb = sb
        self.state = sb.state
        self.method = method
        self.path = path
        self.params = params
        self.body = body
        self.path_params = path_params
        self.user_id = user_id
        self.business_id = business_id
        self.scope = scope


class Route:
    def __init__(self, method: str, pattern: str, handler: Callable, scoped: bool = True,
                 write: bool = False):
        self.method = method
        self.pattern = pattern
        self.handler = handler
        self.scoped = scoped
        self.write = write
        self.regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")


def _flag(params: dict, name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes")


# =========================================================================== the sandbox

class SageSandbox:
    """A local, faithful-enough Sage Business Cloud Accounting v3.1 server.

    See README.md for the routes, admin routes, fault switches and deviations.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0,
                 seed: int = 0, access_token_ttl: int = 300, code_ttl: float = 60,
                 auto_approve: bool = False):
        self.host = host
        self.port = port
        self.access_token_ttl = access_token_ttl
        self.code_ttl = code_ttl
        self.auto_approve = auto_approve
        self.lock = threading.RLock()
        self.state = State(seed)
        self.default_user_id: str | None = None
        self._fault_lock = threading.Lock()
        self._fault_rng = random.Random(seed)
        self._faults = {"rate_429": 0.0, "rate_5xx": 0.0, "drop_after_save": 0.0,
                        "latency": float(latency), "retry_after": 1}
        self._fail_queue: list[dict] = []
        self._stats_lock = threading.Lock()
        self._in_flight = 0
        self.reset_stats()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SageSandbox:
        if self._httpd is not None:
            return self
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        httpd = _Server((self.host, self.port), handler)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, name="sage-sandbox",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SageSandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def authorize_url(self) -> str:
        return self.url + AUTHORIZE_PATH

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def revoke_url(self) -> str:
        return self.url + REVOKE_PATH

    # ------------------------------------------------------------------ admin helpers
    def register_app(self, client_id: str, client_secret: str,
                     redirect_uris: list[str] | tuple = ()) -> dict:
        with self.lock:
            return dict(self.state.register_app(client_id, client_secret, list(redirect_uris)))

    def add_user(self, email: str, first_name: str = "Demo", last_name: str = "User",
                 businesses: list[dict] | None = None, **kwargs) -> dict:
        """Create a user and their businesses; the first user becomes the signed-in one."""
        with self.lock:
            user = self.state.add_user(email, first_name, last_name, businesses, **kwargs)
            if self.default_user_id is None:
                self.default_user_id = user["id"]
            return {"user_id": user["id"], "business_ids": list(user["_business_ids"])}

    def add_business(self, user_id: str, name: str, **kwargs) -> str:
        """Give an existing user another business (country, subscription, active...)."""
        with self.lock:
            return self.state.add_business(user_id, name, **kwargs)["id"]

    def _user(self, user_id: str | None) -> str:
        uid = user_id or self.default_user_id
        if uid is None or uid not in self.state.users:
            raise ValueError("no such user (add_user first)")
        return uid

    def approve(self, client_id: str, redirect_uri: str, state: str | None = None,
                user_id: str | None = None, scope: str = "full_access",
                country: str | None = None, code_challenge: str | None = None,
                code_challenge_method: str | None = None) -> str:
        """What clicking "Allow" does: returns the callback URL with ?code=&country=&state=."""
        with self.lock:
            oauth.check_client_redirect(self.state, client_id, redirect_uri)
            uid = self._user(user_id)
            country = (country or self._user_country(uid)).upper()
            code = oauth.issue_code(self.state, client_id, redirect_uri, uid, scope, country,
                                    self.code_ttl, code_challenge, code_challenge_method)
        return oauth.with_query(redirect_uri, {"code": code, "country": country, "state": state})

    def _user_country(self, user_id: str) -> str:
        lead = self.state.lead_business_id(user_id)
        return self.state.businesses[lead]["country"]["id"] if lead else "GB"

    def issue_tokens(self, client_id: str, user_id: str | None = None,
                     scope: str = "full_access") -> dict:
        """Token pair for a user without the browser dance."""
        with self.lock:
            if client_id not in self.state.apps:
                raise ValueError(f"unknown client_id {client_id!r}")
            return oauth.issue_tokens(self.state, client_id, self._user(user_id), scope,
                                      self.access_token_ttl)

    def expire_access_tokens(self) -> int:
        """Expire every access token now; returns how many."""
        with self.lock:
            past = self.state.now() - dt.timedelta(seconds=1)
            for rec in self.state.access_tokens.values():
                rec["expires_at"] = past
            return len(self.state.access_tokens)

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox clock forward (token/code expiry, timestamps of new records)."""
        with self.lock:
            self.state.clock_offset += dt.timedelta(seconds=seconds)

    def set_faults(self, rate_429: float = 0.0, rate_5xx: float = 0.0,
                   drop_after_save: float = 0.0, latency: float | None = None,
                   retry_after: int = 1) -> dict:
        """Random faults (seeded) on API requests; ``latency`` None keeps the current one."""
        with self._fault_lock:
            self._faults.update(rate_429=float(rate_429), rate_5xx=float(rate_5xx),
                                drop_after_save=float(drop_after_save),
                                retry_after=retry_after)
            if latency is not None:
                self._faults["latency"] = float(latency)
            return dict(self._faults)

    def faults(self) -> dict:
        with self._fault_lock:
            return {**self._faults, "pending": [dict(r) for r in self._fail_queue]}

    def fail_next(self, n: int = 1, status: int | str = 500,
                  path_contains: str | None = None) -> None:
        """The next ``n`` matching requests fail with ``status`` (500, 503, 429,
        "drop_after_save" or "drop_before_save").  ``path_contains`` is matched against
        ``"METHOD /path?query"`` (e.g. "sales_invoices" or "POST /sales_invoices")."""
        allowed = {"drop_after_save", "drop_before_save"}
        if not (isinstance(status, int) and 400 <= status <= 599) and status not in allowed:
            raise ValueError(f"unsupported fault status {status!r}")
        with self._fault_lock:
            self._fail_queue.append({"remaining": int(n), "status": status,
                                     "path_contains": path_contains})

    def record_payment(self, invoice_id: str, amount: Any, date: str | None = None) -> dict:
        """Customer receipt allocated to the invoice (contact_payment) -> PART_PAID/PAID."""
        with self.lock:
            return render(self.state.record_payment(invoice_id, amount, date))

    def void(self, artefact_id: str, reason: str) -> dict:
        """Void an invoice or credit note, like DELETE /sales_invoices/{id}?void_reason=."""
        with self.lock:
            return render(self.state.void_artefact(None, artefact_id, reason))

    def write_off(self, invoice_id: str, ledger_account_id: str | None = None) -> dict:
        """Credit note on Bad Debts (8100) for the outstanding amount + allocation."""
        with self.lock:
            return render(self.state.write_off(invoice_id, ledger_account_id))

    def stats(self) -> dict:
        with self._stats_lock:
            s = self._stats
            return {
                "requests": s["requests"], "by_route": dict(s["by_route"]),
                "by_status": dict(s["by_status"]), "writes": s["writes"],
                "idempotent_replays": s["idempotent_replays"],
                "missing_x_business": s["missing_x_business"],
                "faults_injected": dict(s["faults_injected"]),
                "max_in_flight": s["max_in_flight"],
            }

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._stats = {"requests": 0, "by_route": Counter(), "by_status": Counter(),
                           "writes": 0, "idempotent_replays": 0, "missing_x_business": 0,
                           "faults_injected": Counter(), "max_in_flight": self._in_flight}

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self._stats[key] += n

    def seed_demo(self, client_id: str = "demo", client_secret: str = "demo-secret",
                  redirect_uris: list[str] | tuple = ()) -> dict:
        """The CLI's demo data: an app, a user with two GB businesses and two customers."""
        self.register_app(client_id, client_secret, list(redirect_uris))
        user = self.add_user(
            email="demo@example.com", first_name="Demo", last_name="User",
            businesses=[
                # Multi-currency on: Odoo's demo company invoices in USD.
                {"name": "Demo Trading Ltd", "country": "GB", "subscription": "ACCOUNTING",
                 "active": True, "multi_currency": True},
                {"name": "Second Shop Ltd", "country": "GB", "subscription": "ACCOUNTS",
                 "active": True},
            ])
        with self.lock:
            bid = user["business_ids"][0]
            for name, ref, email in (("Acme Ltd", "ACME001", "ap@acme.example"),
                                     ("Globex Corporation", "GLOBEX", "billing@globex.example")):
                self.state.create_contact(bid, {
                    "name": name, "reference": ref, "contact_type_ids": ["CUSTOMER"],
                    "main_contact_person": {"name": "Accounts", "email": email}})
        return user

    # ------------------------------------------------------------------ routing table
    def _build_routes(self) -> list[Route]:
        r = []

        def add(method, pattern, handler, scoped=True, write=False):
            r.append(Route(method, pattern, handler, scoped, write))

        add("GET", "/businesses", _list_businesses, scoped=False)
        add("GET", "/businesses/{id}", _get_business, scoped=False)
        add("GET", "/user", _get_user, scoped=False)
        add("GET", "/financial_settings", _settings("_financial_settings"))
        add("GET", "/invoice_settings", _settings("_invoice_settings"))
        add("GET", "/ledger_accounts", _list_ledger_accounts)
        add("GET", "/ledger_accounts/{id}", _get_simple("ledger_accounts"))
        add("GET", "/bank_accounts", _list_simple("bank_accounts"))
        add("GET", "/bank_accounts/{id}", _get_simple("bank_accounts"))
        for coll in ("tax_rates", "currencies", "contact_types"):
            add("GET", f"/{coll}", _list_static(coll))
            add("GET", f"/{coll}/{{id}}", _get_static(coll))
        add("GET", "/artefact_statuses", _list_constant("artefact_statuses", ARTEFACT_STATUSES))
        add("GET", "/payment_methods", _list_constant("payment_methods", PAYMENT_METHODS))
        add("GET", "/contacts", _list_contacts)
        add("POST", "/contacts", _post("postContacts", "contact", "create_contact"), write=True)
        add("GET", "/contacts/{id}", _get_simple("contacts"))
        for kind, meta in ARTEFACT_KINDS.items():
            add("GET", f"/{kind}", _list_artefacts(kind))
            add("POST", f"/{kind}", _post(meta["operation"], meta["namespace"], kind), write=True)
            add("GET", f"/{kind}/{{id}}", _get_artefact(kind))
            add("DELETE", f"/{kind}/{{id}}", _delete_artefact(kind), write=True)
        add("GET", "/contact_allocations", _list_payments("contact_allocations"))
        add("POST", "/contact_allocations",
            _post("postContactAllocations", "contact_allocation", "create_allocation"), write=True)
        add("GET", "/contact_allocations/{id}", _get_simple("contact_allocations"))
        add("GET", "/contact_payments", _list_payments("contact_payments"))
        add("POST", "/contact_payments",
            _post("postContactPayments", "contact_payment", "create_payment"), write=True)
        add("GET", "/contact_payments/{id}", _get_simple("contact_payments"))
        add("GET", "/transactions", _list_transactions)
        add("GET", "/transactions/{id}", _get_simple("transactions"))
        return r

    def match(self, method: str, path: str) -> tuple[Route | None, dict, list[str]]:
        allowed = []
        for route in self.routes:
            m = route.regex.match(path)
            if m:
                if route.method == method:
                    return route, m.groupdict(), []
                allowed.append(route.method)
        return None, {}, allowed


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


# =========================================================================== list helpers

def _page_params(params: dict, default: int, maximum: int) -> tuple[int, int]:
    try:
        per_page = int(params.get("items_per_page") or default)
        page = int(params.get("page") or 1)
    except ValueError:
        raise SageError(422, "must be an integer", "RecordInvalid", "items_per_page") from None
    return max(1, min(per_page, maximum)), max(1, page)


def _paginate(ctx: Ctx, resource: str, records: list[dict], render_item: Callable,
              default: int = 20, maximum: int = 200, per_page_key: str = "$itemsPerPage") -> dict:
    per_page, page = _page_params(ctx.params, default, maximum)
    total = len(records)
    last = max(1, -(-total // per_page))
    page = min(page, last)
    chunk = records[(page - 1) * per_page: page * per_page]
    extra = {k: v for k, v in ctx.params.items() if k not in ("page", "items_per_page")}

    def page_path(p: int) -> str:
        query = {"page": p, "items_per_page": per_page, **extra}
        return f"/{resource}?{urlencode(query)}"

    return {
        "$total": total, "$page": page,
        "$next": page_path(page + 1) if page < last else None,
        "$back": page_path(page - 1) if page > 1 else None,
        per_page_key: per_page,
        "$items": [render_item(rec) for rec in chunk],
    }


def _item_renderer(ctx: Ctx, full: Callable[[dict], dict] = render) -> Callable[[dict], dict]:
    attrs = [a.strip() for a in (ctx.params.get("attributes") or "").split(",") if a.strip()]

    def render_item(rec: dict) -> dict:
        if not attrs:
            return {k: rec.get(k) for k in LIST_BASE_KEYS}
        obj = full(rec)
        if "all" in attrs:
            return obj
        out = {k: obj.get(k) for k in LIST_BASE_KEYS}
        for a in attrs:
            if a in obj:
                out[a] = obj[a]
        return out

    return render_item


def _time_filters(ctx: Ctx, records: list[dict]) -> list[dict]:
    since = ctx.params.get("updated_or_created_since")
    deleted_since = ctx.params.get("deleted_since")
    if deleted_since:
        when = parse_since(deleted_since, "deleted_since")
        return [r for r in records if r.get("deleted_at") and r["deleted_at"] > when]
    records = [r for r in records if not r.get("deleted_at")]
    if since:
        when = parse_since(since, "updated_or_created_since")
        records = [r for r in records if r["updated_at"] >= when or r["created_at"] >= when]
    return records


def _sort(ctx: Ctx, records: list[dict],
          fields: tuple = ("created_at", "updated_at", "date", "due_date")) -> list[dict]:
    records = sorted(records, key=lambda r: r.get("_seq", 0))
    sort = ctx.params.get("sort")
    if not sort:
        return records
    field, _, direction = sort.partition(":")
    if field not in fields:
        raise SageError(422, f"cannot sort by {field!r}", "RecordInvalid", "sort")
    return sorted(records, key=lambda r: (r.get(field) is None, r.get(field) or 0),
                  reverse=direction.lower() == "desc")


def _search(value: str | None, *candidates: Any) -> bool:
    if not value:
        return True
    needle = value.lower()
    return any(needle in str(c).lower() for c in candidates if c)


# =========================================================================== API handlers

def _list_businesses(ctx: Ctx):
    state = ctx.state
    user = state.users[ctx.user_id]
    records = [state.businesses[b] for b in user["_business_ids"] if b in state.businesses]
    if _flag(ctx.params, "active_only"):
        records = [b for b in records if any(s["active"] for s in b["subscriptions"])]
    family = ctx.params.get("product_family")
    if family:
        records = [b for b in records if b["_product_family"] == family]
    if ctx.params.get("name"):
        records = [b for b in records if _search(ctx.params["name"], b["name"])]
    return 200, _paginate(ctx, "businesses", records, _item_renderer(ctx), default=25,
                          maximum=500, per_page_key="$items_per_page")


def _get_business(ctx: Ctx):
    bid = ctx.path_params["id"]
    if bid == "lead":
        bid = ctx.state.lead_business_id(ctx.user_id) or ""
    biz = ctx.state.businesses.get(bid)
    if biz is None or ctx.user_id not in biz["_user_ids"]:
        raise not_found()
    return 200, render(biz)


def _get_user(ctx: Ctx):
    return 200, render(ctx.state.users[ctx.user_id])


def _settings(key: str):
    def handler(ctx: Ctx):
        return 200, render(ctx.state.businesses[ctx.business_id][key])
    return handler


def _get_simple(collection: str):
    def handler(ctx: Ctx):
        return 200, render(ctx.state.get(collection, ctx.business_id, ctx.path_params["id"]))
    return handler


def _list_simple(collection: str):
    def handler(ctx: Ctx):
        records = _sort(ctx, _time_filters(ctx, ctx.state.collection(collection, ctx.business_id)))
        return 200, _paginate(ctx, collection, records, _item_renderer(ctx))
    return handler


def _static_records(ctx: Ctx, collection: str) -> dict:
    return ctx.state.businesses[ctx.business_id]["_" + collection]


def _list_static(collection: str):
    def handler(ctx: Ctx):
        records = list(_static_records(ctx, collection).values())
        if ctx.params.get("updated_or_created_since") and records and "updated_at" in records[0]:
            records = _time_filters(ctx, records)
        return 200, _paginate(ctx, collection, records, _item_renderer(ctx))
    return handler


def _get_static(collection: str):
    def handler(ctx: Ctx):
        rec = _static_records(ctx, collection).get(ctx.path_params["id"])
        if rec is None:
            raise not_found()
        return 200, render(rec)
    return handler


def _list_constant(collection: str, pairs: list):
    def handler(ctx: Ctx):
        records = [link(collection, cid, name) for cid, name in pairs]
        return 200, _paginate(ctx, collection, records, _item_renderer(ctx))
    return handler


def _list_ledger_accounts(ctx: Ctx):
    records = _time_filters(ctx, ctx.state.collection("ledger_accounts", ctx.business_id))
    p = ctx.params
    if p.get("visible_in"):
        records = [r for r in records if p["visible_in"] in r["visible_scopes"]]
    if p.get("not_visible_in"):
        records = [r for r in records if p["not_visible_in"] not in r["visible_scopes"]]
    if p.get("ledger_account_type_id"):
        wanted = p["ledger_account_type_id"]
        records = [r for r in records if r["ledger_account_type"]["id"] == wanted]
    if not _flag(p, "show_control_accounts", True):
        records = [r for r in records if not r["is_control_account"]]
    records = [r for r in records
               if _search(p.get("search"), r["name"], r["nominal_code"], r["display_name"])]
    records.sort(key=lambda r: r["nominal_code"])
    return 200, _paginate(ctx, "ledger_accounts", records, _item_renderer(ctx))


def _contact_emails(rec: dict) -> set[str]:
    emails = {rec.get("email")}
    person = rec.get("main_contact_person") or {}
    emails.add(person.get("email"))
    return {e.lower() for e in emails if e}


def _list_contacts(ctx: Ctx):
    p = ctx.params
    records = _time_filters(ctx, ctx.state.collection("contacts", ctx.business_id))
    if p.get("email"):
        wanted = p["email"].strip().lower()
        records = [r for r in records if wanted in _contact_emails(r)]
    if p.get("contact_type_id"):
        records = [r for r in records
                   if any(t["id"] == p["contact_type_id"] for t in r["contact_types"])]
    if p.get("search"):
        records = [r for r in records if _search(p["search"], r["name"], r.get("reference"))]
    return 200, _paginate(ctx, "contacts", _sort(ctx, records), _item_renderer(ctx))


def _render_artefact(rec: dict, show_payments: bool = False) -> dict:
    out = render(rec)
    if show_payments:
        out["payments_allocations"] = render(rec["_payments_allocations"])
    return out


def _list_artefacts(kind: str):
    number_field = ARTEFACT_KINDS[kind]["number"]

    def handler(ctx: Ctx):
        p = ctx.params
        records = _time_filters(ctx, ctx.state.collection(kind, ctx.business_id))
        if p.get("contact_id"):
            records = [r for r in records if r["contact"]["id"] == p["contact_id"]]
        if p.get("status_id"):
            wanted = set(p["status_id"].split(","))
            records = [r for r in records if r["status"]["id"] in wanted]
        if p.get("from_date"):
            start = parse_date(p["from_date"], "from_date")
            records = [r for r in records if r["date"] >= start]
        if p.get("to_date"):
            end = parse_date(p["to_date"], "to_date")
            records = [r for r in records if r["date"] <= end]
        if p.get("search"):
            records = [r for r in records if _search(
                p["search"], r[number_field], r.get("reference"), r["contact_name"],
                r["contact"]["displayed_as"])]
        show = _flag(p, "show_payments_allocations")
        return 200, _paginate(ctx, kind, _sort(ctx, records),
                              _item_renderer(ctx, lambda r: _render_artefact(r, show)))
    return handler


def _get_artefact(kind: str):
    def handler(ctx: Ctx):
        with ctx.sb.lock:
            rec = ctx.state.get(kind, ctx.business_id, ctx.path_params["id"])
            if _flag(ctx.params, "mark_as_sent", True) and rec["status"]["id"] != "DRAFT":
                rec["sent"] = True  # Sage: mark_as_sent defaults to true on a single GET
            return 200, _render_artefact(rec, _flag(ctx.params, "show_payments_allocations"))
    return handler


def _delete_artefact(kind: str):
    def handler(ctx: Ctx):
        with ctx.sb.lock:
            ctx.state.get(kind, ctx.business_id, ctx.path_params["id"])
            rec = ctx.state.void_artefact(ctx.business_id, ctx.path_params["id"],
                                          ctx.params.get("void_reason"))
            ctx.sb._count("writes")
            return 200, _render_artefact(rec)
    return handler


def _list_payments(collection: str):
    def handler(ctx: Ctx):
        p = ctx.params
        records = _time_filters(ctx, ctx.state.collection(collection, ctx.business_id))
        if p.get("contact_id"):
            records = [r for r in records if r["contact"]["id"] == p["contact_id"]]
        if p.get("transaction_type_id"):
            records = [r for r in records
                       if r["transaction_type"]["id"] == p["transaction_type_id"]]
        if p.get("bank_account_id") and collection == "contact_payments":
            records = [r for r in records if r["bank_account"]["id"] == p["bank_account_id"]]
        if p.get("from_date"):
            start = parse_date(p["from_date"], "from_date")
            records = [r for r in records if r["date"] >= start]
        if p.get("to_date"):
            end = parse_date(p["to_date"], "to_date")
            records = [r for r in records if r["date"] <= end]
        return 200, _paginate(ctx, collection, _sort(ctx, records), _item_renderer(ctx))
    return handler


def _list_transactions(ctx: Ctx):
    p = ctx.params
    records = ctx.state.collection("transactions", ctx.business_id)
    if p.get("updated_or_created_since"):
        records = _time_filters(ctx, records)
    if p.get("transaction_type_id"):
        records = [r for r in records if r["transaction_type"]["id"] == p["transaction_type_id"]]
    return 200, _paginate(ctx, "transactions", _sort(ctx, records), _item_renderer(ctx))


def _post(operation_id: str, namespace: str, creator: str):
    """Generic create: idempotency, Swagger validation, business rules, 201."""
    def handler(ctx: Ctx):
        sb, state, body = ctx.sb, ctx.state, ctx.body
        stripped, idem, errors = schema.strip_idempotency(body)
        if errors:
            raise SageError(422, errors)
        key = (ctx.business_id, ctx.path, idem) if idem else None
        if key:
            with sb.lock:
                if key in state.idempotency:
                    sb._count("idempotent_replays")
                    return state.idempotency[key]
        errors = schema.validate_body(operation_id, stripped)
        if errors:
            raise SageError(422, errors)
        data = stripped[namespace]
        with sb.lock:
            if key and key in state.idempotency:
                sb._count("idempotent_replays")
                return state.idempotency[key]
            if creator in ARTEFACT_KINDS:
                rec = state.create_artefact(creator, ctx.business_id, data)
                payload = _render_artefact(rec)
            else:
                rec = getattr(state, creator)(ctx.business_id, data)
                payload = render(rec)
            result = (201, payload)
            if key:
                state.idempotency[key] = result
            sb._count("writes")
            return result
    return handler


# =========================================================================== HTTP handler

class _Handler(BaseHTTPRequestHandler):
    sandbox: SageSandbox
    protocol_version = "HTTP/1.1"
    server_version = "SageSandbox/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PATCH(self):
        self._handle("PATCH")

    # ------------------------------------------------------------------ plumbing
    def _handle(self, method: str) -> None:
        sb = self.sandbox
        self.request_id = uuid.uuid4().hex
        self.extra_headers: dict[str, str] = {}
        length = int(self.headers.get("Content-Length") or 0)
        self.raw_body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path = split.path
        query = split.query
        self.params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if path.startswith(ADMIN_PREFIX + "/") or path == ADMIN_PREFIX:
            self._admin(method, path)
            return
        with sb._stats_lock:
            sb._in_flight += 1
            sb._stats["max_in_flight"] = max(sb._stats["max_in_flight"], sb._in_flight)
        try:
            self._serve(method, path, query)
        except _Drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        finally:
            with sb._stats_lock:
                sb._in_flight -= 1

    def _serve(self, method: str, path: str, query: str) -> None:
        sb = self.sandbox
        is_api = path.startswith(API_PREFIX + "/")
        route = None
        path_params: dict = {}
        allowed: list[str] = []
        if is_api:
            route, path_params, allowed = sb.match(method, path[len(API_PREFIX):])
            route_key = f"{method} {route.pattern}" if route else f"{method} {path}"
        else:
            route_key = f"{method} {path}"
        with sb._stats_lock:
            sb._stats["requests"] += 1
            sb._stats["by_route"][route_key] += 1

        with sb._fault_lock:
            latency = sb._faults["latency"]
        if latency > 0:
            time.sleep(latency)  # never under the store lock

        fault = self._pick_fault(method, path, query, is_api, route)
        if isinstance(fault, int):
            self._fault_response(fault)
            return
        if fault == "drop_before_save":
            raise _Drop()

        if path == AUTHORIZE_PATH:
            self._authorize(method)
        elif path == TOKEN_PATH or path == REVOKE_PATH:
            self._token(method, path)
        elif not is_api:
            self._send_json(404, [error_item("Not found.", "RecordNotFound", "")])
        elif route is None:
            if allowed:
                self.extra_headers["Allow"] = ", ".join(sorted(set(allowed)))
                self._send_json(405, [error_item(f"Method {method} not allowed.",
                                                 "MethodNotAllowed", "")])
            else:
                self._send_json(404, [error_item("Not found.", "RecordNotFound", "")])
        else:
            status, payload = self._api(method, route, path, path_params)
            if fault == "drop_after_save":
                raise _Drop()
            self._send_json(status, payload)

    def _pick_fault(self, method: str, path: str, query: str, is_api: bool,
                    route: Route | None):
        sb = self.sandbox
        target = f"{method} {path[len(API_PREFIX):] if is_api else path}"
        if query:
            target += "?" + query
        with sb._fault_lock:
            for rule in sb._fail_queue:
                if rule["remaining"] > 0 and (not rule["path_contains"]
                                              or rule["path_contains"] in target):
                    rule["remaining"] -= 1
                    fault = rule["status"]
                    break
            else:
                fault = None
            sb._fail_queue = [r for r in sb._fail_queue if r["remaining"] > 0]
            if fault is None and is_api:
                f = sb._faults
                rng = sb._fault_rng
                if f["rate_429"] and rng.random() < f["rate_429"]:
                    fault = 429
                elif f["rate_5xx"] and rng.random() < f["rate_5xx"]:
                    fault = rng.choice((500, 503))
                elif (f["drop_after_save"] and route is not None and route.write
                      and rng.random() < f["drop_after_save"]):
                    fault = "drop_after_save"
        if fault is not None:
            with sb._stats_lock:
                sb._stats["faults_injected"][str(fault)] += 1
        return fault

    def _fault_response(self, status: int) -> None:
        sb = self.sandbox
        if status == 429:
            with sb._fault_lock:
                self.extra_headers["Retry-After"] = str(sb._faults["retry_after"])
            self._send_json(429, [error_item("Too many requests. Please retry later.",
                                             "TooManyRequests", "")])
        elif status == 503:
            self._send_json(503, [error_item("Service temporarily unavailable.",
                                             "ServiceUnavailable", "")])
        else:
            self._send_json(status, [error_item("Internal server error (sandbox fault).",
                                                "InternalServerError", "")])

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        sb = self.sandbox
        with sb._stats_lock:
            sb._stats["by_status"][str(status)] += 1
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", self.request_id)
        for k, v in self.extra_headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def _send_admin(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", self.request_id)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.extra_headers["Location"] = location
        self._send(302, b"", "text/html; charset=utf-8")

    def _form(self) -> dict:
        text = self.raw_body.decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def _basic_auth(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization") or ""
        if not header.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ("", "")
        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)

    # ------------------------------------------------------------------ OAuth
    def _authorize(self, method: str) -> None:
        sb = self.sandbox
        if method not in ("GET", "POST"):
            self.extra_headers["Allow"] = "GET, POST"
            self._send(405, oauth.error_page("Method not allowed.").encode(),
                       "text/html; charset=utf-8")
            return
        params = dict(self.params) if method == "GET" else self._form()
        with sb.lock:
            try:
                oauth.check_client_redirect(sb.state, params.get("client_id"),
                                            params.get("redirect_uri"))
            except oauth.AuthorizePageError as exc:
                self._send(400, oauth.error_page(str(exc)).encode(), "text/html; charset=utf-8")
                return
            redirect_uri = params["redirect_uri"]
            state_param = params.get("state")
            if params.get("response_type") != "code":
                self._redirect(oauth.with_query(redirect_uri, {
                    "error": "unsupported_response_type", "state": state_param}))
                return
            scope = params.get("scope") or "full_access"
            if scope not in oauth.SCOPES:
                self._redirect(oauth.with_query(redirect_uri, {
                    "error": "invalid_scope", "state": state_param}))
                return
            user_id = params.get("sandbox_user") or sb.default_user_id
            user = sb.state.users.get(user_id or "")
            if user is None:
                self._send(400, oauth.error_page("No user is signed in to the sandbox "
                                                 "(add_user first).").encode(),
                           "text/html; charset=utf-8")
                return
        decision = params.get("decision")
        if method == "GET" and not sb.auto_approve:
            params["scope"] = scope
            params["sandbox_user"] = user["id"]
            page = oauth.authorize_page(params, user, AUTHORIZE_PATH)
            self._send(200, page.encode(), "text/html; charset=utf-8")
            return
        if method == "POST" and decision != "allow":
            self._redirect(oauth.with_query(redirect_uri, {
                "error": "access_denied", "state": state_param}))
            return
        location = sb.approve(params["client_id"], redirect_uri, state_param, user["id"], scope,
                              params.get("country"), params.get("code_challenge"),
                              params.get("code_challenge_method"))
        self._redirect(location)

    def _token(self, method: str, path: str) -> None:
        sb = self.sandbox
        if method != "POST":
            self.extra_headers["Allow"] = "POST"
            self._send_json(405, {"error": "invalid_request", "error_description":
                                  "Use POST."})
            return
        ctype = (self.headers.get("Content-Type") or "").lower()
        if ctype.startswith("application/json"):
            try:
                form = {k: str(v) for k, v in json.loads(self.raw_body or b"{}").items()}
            except (ValueError, AttributeError):
                form = {}
        else:
            form = self._form()
        self.extra_headers["Cache-Control"] = "no-store"
        try:
            with sb.lock:
                if path == TOKEN_PATH:
                    payload = oauth.token_endpoint(sb.state, form, self._basic_auth(),
                                                   sb.access_token_ttl)
                else:
                    payload = oauth.revoke_endpoint(sb.state, form, self._basic_auth())
        except oauth.OAuthError as exc:
            self._send_json(exc.status, exc.body())
            return
        self._send_json(200, payload)

    # ------------------------------------------------------------------ API
    def _auth_error(self, message: str) -> SageError:
        return SageError(401, message, "AuthorizationFailure", "",
                         {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def _api(self, method: str, route: Route, path: str, path_params: dict) -> tuple[int, Any]:
        sb = self.sandbox
        try:
            header = self.headers.get("Authorization") or ""
            if not header.lower().startswith("bearer "):
                raise self._auth_error("Unauthorized: missing bearer access token.")
            token = header[7:].strip()
            with sb.lock:
                rec = sb.state.access_tokens.get(token)
                if rec is None or rec["revoked"]:
                    raise self._auth_error("Unauthorized: invalid access token.")
                if rec["expires_at"] <= sb.state.now():
                    raise self._auth_error("Unauthorized: the access token has expired.")
                user_id = rec["user_id"]
                if user_id not in sb.state.users:
                    raise self._auth_error("Unauthorized: unknown user.")
                scope = rec["scope"]
                business_id = self._business(route, user_id) if route.scoped else None
            if route.write and scope == "readonly":
                raise SageError(403, "Your access is read only.", "AuthorizationFailure", "")
            body = None
            if method in ("POST", "PUT", "PATCH"):
                ctype = (self.headers.get("Content-Type") or "").lower()
                if not ctype.startswith("application/json"):
                    raise SageError(415, "Unsupported media type: send application/json.",
                                    "UnsupportedMediaType", "")
                try:
                    body = json.loads(self.raw_body.decode("utf-8") or "null")
                except (ValueError, UnicodeDecodeError):
                    raise SageError(400, "The request body is not valid JSON.", "BadRequest",
                                    "") from None
            ctx = Ctx(sb, method, path[len(API_PREFIX):], self.params, body, path_params,
                      user_id, business_id, scope)
            if route.write:  # write handlers validate outside the lock, then lock
                return route.handler(ctx)
            with sb.lock:
                return route.handler(ctx)
        except SageError as exc:
            self.extra_headers.update(exc.headers)
            return exc.status, exc.errors

    def _business(self, route: Route, user_id: str) -> str:
        sb = self.sandbox
        state = sb.state
        requested = (self.headers.get("X-Business") or "").strip()
        if not requested:
            sb._count("missing_x_business")
            requested = state.lead_business_id(user_id) or ""
            if not requested:
                raise SageError(403, "The user has no business.", "AuthorizationFailure", "")
        biz = state.businesses.get(requested)
        if biz is None:
            raise SageError(404, "Business not found.", "RecordNotFound", "X-Business")
        if user_id not in biz["_user_ids"]:
            raise SageError(403, "You do not have access to this business.",
                            "AuthorizationFailure", "X-Business")
        if not any(s["active"] for s in biz["subscriptions"]):
            raise SageError(403, "The subscription of this business is not active.",
                            "AuthorizationFailure", "X-Business")
        self.extra_headers["X-Business"] = requested
        return requested

    # ------------------------------------------------------------------ admin
    def _admin(self, method: str, path: str) -> None:
        sb = self.sandbox
        name = path[len(ADMIN_PREFIX):].strip("/")
        try:
            body = json.loads(self.raw_body.decode("utf-8") or "{}") if self.raw_body else {}
        except ValueError:
            self._send_admin(400, {"error": "body is not valid JSON"})
            return
        body = {**self.params, **(body if isinstance(body, dict) else {})}
        handlers = _admin_routes(sb)
        handler = handlers.get((method, name))
        if handler is None:
            known = sorted(f"{m} {ADMIN_PREFIX}/{n}" for m, n in handlers)
            self._send_admin(404, {"error": f"unknown admin route {method} {path}",
                                   "routes": known})
            return
        try:
            status, payload = handler(body)
        except SageError as exc:
            self._send_admin(exc.status, exc.errors)
            return
        except (TypeError, ValueError, KeyError) as exc:
            self._send_admin(400, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._send_admin(status, payload)


def _admin_routes(sb: SageSandbox) -> dict:
    def ok(value: Any) -> tuple[int, Any]:
        return 200, value

    def state_dump(_b: dict):
        with sb.lock:
            st = sb.state
            return ok({
                "apps": [{"client_id": a["client_id"], "redirect_uris": a["redirect_uris"]}
                         for a in st.apps.values()],
                "users": [render(u) | {"business_ids": u["_business_ids"]}
                          for u in st.users.values()],
                "businesses": [render(b) for b in st.businesses.values()],
                **{c: [render(r) | {"business_id": r.get("_business_id")}
                       for r in getattr(st, c).values()]
                   for c in ("contacts", "sales_invoices", "sales_credit_notes",
                             "contact_allocations", "contact_payments")},
            })

    return {
        ("POST", "apps"): lambda b: ok(sb.register_app(
            b["client_id"], b["client_secret"], b.get("redirect_uris") or [])),
        ("POST", "users"): lambda b: (201, sb.add_user(
            email=b["email"], first_name=b.get("first_name", "Demo"),
            last_name=b.get("last_name", "User"), businesses=b.get("businesses"))),
        ("POST", "approve"): lambda b: ok({"location": sb.approve(
            b["client_id"], b["redirect_uri"], b.get("state"), b.get("user_id"),
            b.get("scope", "full_access"), b.get("country"))}),
        ("POST", "tokens"): lambda b: ok(sb.issue_tokens(
            b["client_id"], b.get("user_id"), b.get("scope", "full_access"))),
        ("POST", "expire_access_tokens"): lambda b: ok({"expired": sb.expire_access_tokens()}),
        ("POST", "advance_clock"): lambda b: ok(sb.advance_clock(float(b["seconds"])) or {}),
        ("GET", "faults"): lambda b: ok(sb.faults()),
        ("POST", "faults"): lambda b: ok(sb.set_faults(
            rate_429=float(b.get("rate_429", 0)), rate_5xx=float(b.get("rate_5xx", 0)),
            drop_after_save=float(b.get("drop_after_save", 0)),
            latency=None if b.get("latency") is None else float(b["latency"]),
            retry_after=int(b.get("retry_after", 1)))),
        ("POST", "fail_next"): lambda b: ok(sb.fail_next(
            int(b.get("n", 1)), _fault_status(b.get("status", 500)),
            b.get("path_contains")) or sb.faults()),
        ("POST", "record_payment"): lambda b: (201, sb.record_payment(
            b["invoice_id"], b["amount"], b.get("date"))),
        ("POST", "void"): lambda b: ok(sb.void(b["artefact_id"], b.get("reason"))),
        ("POST", "write_off"): lambda b: (201, sb.write_off(
            b["invoice_id"], b.get("ledger_account_id"))),
        ("GET", "stats"): lambda b: ok(sb.stats()),
        ("POST", "reset_stats"): lambda b: ok(sb.reset_stats() or sb.stats()),
        ("GET", "state"): state_dump,
    }


def _fault_status(value: Any) -> int | str:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value
