"""Pure tests (no Odoo): SageOAuth + SageClient end to end against the local
Sage sandbox (``sage_sandbox``), over real HTTP on 127.0.0.1."""

import json
import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import (
    SageClient,
    SageConnectionError,
    SageOAuth,
    SageReauthorizationRequired,
    SageValidationError,
    make_idempotency_id,
    to_decimal,
)

sandbox_mod = pytest.importorskip("sage_sandbox")
schema = pytest.importorskip("sage_sandbox.schema")

CLIENT_ID = "odoo-connector"
CLIENT_SECRET = "sandbox-secret"
REDIRECT = "http://localhost:8069/sage_one/callback"

# request path -> Swagger operation id of its body
BODY_OPERATIONS = {
    ("POST", "/sales_invoices"): "postSalesInvoices",
    ("POST", "/sales_credit_notes"): "postSalesCreditNotes",
    ("POST", "/contacts"): "postContacts",
    ("POST", "/contact_allocations"): "postContactAllocations",
}


@pytest.fixture(autouse=True)
def _insecure_transport(monkeypatch):
    # the sandbox speaks plain http on 127.0.0.1; oauthlib insists on https otherwise
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def sb():
    with sandbox_mod.SageSandbox() as sandbox:
        sandbox.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT])
        sandbox.add_user(
            "owner@example.com",
            businesses=[
                {"name": "Main Trading Ltd", "country": "GB", "subscription": "ACCOUNTING"},
                {"name": "Other Shop Ltd", "country": "GB", "subscription": "ACCOUNTS"},
            ],
        )
        yield sandbox


@pytest.fixture
def oauth(sb):
    return SageOAuth(
        CLIENT_ID,
        CLIENT_SECRET,
        REDIRECT,
        authorize_url=sb.authorize_url,
        token_url=sb.token_url,
        revoke_url=sb.revoke_url,
    )


class RecordingSession(requests.Session):
    """Keeps (method, path, decoded JSON body) of every API request sent."""

    sent = []
    lock = threading.Lock()

    def request(self, method, url, *args, **kwargs):
        data = kwargs.get("data")
        if data:
            path = urlsplit(url).path
            with self.lock:
                self.sent.append((method, path, json.loads(data)))
        return super().request(method, url, *args, **kwargs)


class TokenRow:
    """What the Odoo side does: one row, a row lock, rotation persisted at once."""

    def __init__(self, oauth, pair):
        self.oauth = oauth
        self.pair = dict(pair)
        self.lock = threading.Lock()
        self.refreshes = 0

    def refresh(self, refused):
        with self.lock:
            if self.pair["access_token"] != refused:
                return self.pair["access_token"]
            self.pair = self.oauth.refresh(self.pair["refresh_token"])
            self.refreshes += 1
            return self.pair["access_token"]


def connect(sb, oauth):
    """The full OAuth dance, as the Odoo controller does it."""
    state = "csrf-state-123"
    url = oauth.authorization_url(state, country="gb")
    page = requests.get(url, timeout=5)
    assert page.status_code == 200  # the sandbox accepts our authorize parameters
    callback = sb.approve(CLIENT_ID, REDIRECT, state=state)
    code, country = oauth.code_from_callback(callback, state)
    assert code.startswith("GB/") and country == "GB"
    return oauth.exchange_code(code), code


def make_client(sb, row, sleeps=None, **kwargs):
    RecordingSession.sent = []
    return SageClient(
        sb.api_url,
        access_token=row.pair["access_token"],
        refresh=row.refresh,
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        session_factory=RecordingSession,
        **kwargs,
    )


def sales_ledger_account(client):
    accounts = client.list_ledger_accounts()
    assert accounts
    for account in accounts:
        if str(account.get("nominal_code")) == "4000":
            return account["id"]
    return accounts[0]["id"]


def invoice_body(contact_id, ledger_id, **extra):
    body = {
        "contact_id": contact_id,
        "date": date(2026, 1, 15),
        "reference": "ODOO INV/2026/00042",
        "invoice_lines": [
            {
                "description": "Consulting, January",
                "ledger_account_id": ledger_id,
                "quantity": Decimal("10"),
                "unit_price": Decimal("100.00"),
                "tax_rate_id": "GB_STANDARD",
                "tax_amount": Decimal("200.00"),
            }
        ],
    }
    body.update(extra)
    return body


@pytest.fixture
def connected(sb, oauth):
    pair, _code = connect(sb, oauth)
    row = TokenRow(oauth, pair)
    client = make_client(sb, row)
    businesses = client.list_businesses()
    client.business_id = businesses[0]["id"]
    contact = client.create_contact(
        {
            "name": "Acme Ltd",
            "contact_type_ids": ["CUSTOMER"],
            "reference": "ACME001",
            "main_contact_person": {"name": "AP", "email": "ap@acme.example"},
        },
        make_idempotency_id("test", "res.partner", 1),
    )
    return client, row, contact["id"], sales_ledger_account(client)


def test_oauth_dance_businesses_and_user(sb, oauth):
    pair, code = connect(sb, oauth)
    assert pair["access_token"] and pair["refresh_token"]
    assert pair["expires_at"] > datetime.now(timezone.utc).timestamp()
    assert pair["refresh_token_expires_at"] > pair["expires_at"]
    assert pair["scope"] == "full_access"
    # a code is single use
    with pytest.raises(SageReauthorizationRequired):
        oauth.exchange_code(code)
    client = make_client(sb, TokenRow(oauth, pair))
    businesses = client.list_businesses()
    assert [b["displayed_as"] for b in businesses] == ["Main Trading Ltd", "Other Shop Ltd"]
    assert client.get_user()["email"] == "owner@example.com"
    client.business_id = businesses[1]["id"]
    assert client.get_business(businesses[1]["id"])["name"] == "Other Shop Ltd"
    assert client.get_financial_settings()
    assert sb.stats()["missing_x_business"] == 0


def test_expired_access_token_refreshes_and_rotates(sb, oauth, connected):
    client, row, _contact, _ledger = connected
    old_pair = dict(row.pair)
    sb.expire_access_tokens()
    assert client.get_financial_settings()
    assert row.refreshes == 1
    assert row.pair["refresh_token"] != old_pair["refresh_token"]
    assert client.access_token == row.pair["access_token"] != old_pair["access_token"]
    # the rotated-away refresh token is dead
    with pytest.raises(SageReauthorizationRequired):
        oauth.refresh(old_pair["refresh_token"])
    # later calls use the new token without another refresh
    client.list_tax_rates()
    assert row.refreshes == 1
    # disconnect: revoke, then the refresh token no longer works
    oauth.revoke(row.pair["refresh_token"])
    with pytest.raises(SageReauthorizationRequired):
        oauth.refresh(row.pair["refresh_token"])


def test_parallel_workers_refresh_once(sb, oauth, connected):
    _client, row, _contact, _ledger = connected
    sb.expire_access_tokens()
    workers = [make_client(sb, row, business_id=_client.business_id) for _ in range(4)]
    barrier = threading.Barrier(4)
    errors = []

    def run(worker):
        barrier.wait(timeout=5)
        try:
            worker.list_tax_rates()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == []
    assert row.refreshes == 1


def test_duplicate_invoice_number_is_validation_error(sb, connected):
    client, _row, contact_id, ledger_id = connected
    first = client.create_sales_invoice(
        invoice_body(contact_id, ledger_id, invoice_number="ODOO-0001"),
        make_idempotency_id("test", "account.move", 1, 0),
    )
    assert first["invoice_number"] == "ODOO-0001"
    with pytest.raises(SageValidationError) as info:
        client.create_sales_invoice(
            invoice_body(contact_id, ledger_id, invoice_number="ODOO-0001"),
            make_idempotency_id("test", "account.move", 2, 0),
        )
    err = info.value
    assert err.status == 422
    assert "invoice_number" in err.fields
    assert "taken" in err.fields["invoice_number"]
    assert err.request_id


def test_idempotent_replay_creates_one_invoice(sb, connected):
    client, _row, contact_id, ledger_id = connected
    idem = make_idempotency_id("test", "account.move", 7, 0)
    sb.fail_next(1, "drop_after_save", path_contains="POST /sales_invoices")
    created = client.create_sales_invoice(invoice_body(contact_id, ledger_id), idem)
    assert created["id"]
    # the same call again (e.g. the Odoo job re-run) returns the same invoice
    again = client.create_sales_invoice(invoice_body(contact_id, ledger_id), idem)
    assert again["id"] == created["id"]
    assert sb.stats()["idempotent_replays"] == 2
    found = client.search_sales_invoices("ODOO INV/2026/00042")
    assert [i["id"] for i in found] == [created["id"]]


def test_dropped_non_idempotent_post_is_maybe_sent(sb, connected):
    client, _row, contact_id, ledger_id = connected
    sb.fail_next(1, "drop_after_save", path_contains="POST /sales_invoices")
    with pytest.raises(SageConnectionError) as info:
        client.create_sales_invoice(invoice_body(contact_id, ledger_id), None)
    assert info.value.maybe_sent is True
    # ...and indeed Sage saved it: this is why writes carry an idempotency_id
    assert len(client.search_sales_invoices("ODOO INV/2026/00042")) == 1


def test_faults_are_retried(sb, connected):
    client, _row, _contact, _ledger = connected
    sleeps = []
    client._sleep = sleeps.append
    sb.fail_next(2, 503, path_contains="GET /tax_rates")
    assert client.list_tax_rates()
    sb.fail_next(1, 429, path_contains="GET /currencies")
    assert client.list_currencies()
    assert len(sleeps) == 3 and sleeps[-1] == 1.0  # sandbox sends Retry-After: 1


def test_pagination_against_sandbox(sb, connected):
    client, _row, _contact, _ledger = connected
    all_rates = client.list_tax_rates()
    before = client.calls
    paged = list(client.iterate("/tax_rates", attributes=["name"], items_per_page=2))
    assert [r["id"] for r in paged] == [r["id"] for r in all_rates]
    assert client.calls - before == -(-len(all_rates) // 2)
    assert all("name" in r for r in paged)


def test_full_flow_bodies_conform_to_swagger(sb, connected):
    """Invoice, credit note, allocation (write-off recipe), payment pull; every
    body the client sent is valid for Sage's Swagger definition."""
    client, _row, contact_id, ledger_id = connected
    since = datetime.now(timezone.utc) - timedelta(minutes=5)
    assert client.find_contacts_by_email("ap@acme.example")[0]["id"] == contact_id
    assert client.get_contact(contact_id)["name"] == "Acme Ltd"
    invoice = client.create_sales_invoice(
        invoice_body(contact_id, ledger_id, due_date=date(2026, 2, 14)),
        make_idempotency_id("test", "account.move", 10, 0),
    )
    assert to_decimal(invoice["total_amount"]) == Decimal("1200")
    note = client.create_sales_credit_note(
        {
            "contact_id": contact_id,
            "date": date(2026, 6, 30),
            "reference": "WO INV/2026/00042",
            "credit_note_lines": [
                {
                    "description": "Bad debt write-off",
                    "ledger_account_id": ledger_id,
                    "quantity": 1,
                    "unit_price": Decimal("250.00"),
                    "tax_rate_id": "GB_STANDARD",
                    "tax_amount": Decimal("50.00"),
                }
            ],
        },
        make_idempotency_id("test", "account.move", 11, 0),
    )
    client.create_contact_allocation(
        contact_id,
        [(invoice["id"], Decimal("300.00")), (note["id"], Decimal("-300.00"))],
        date(2026, 6, 30),
        make_idempotency_id("test", "allocation", 11, 0),
    )
    sb.record_payment(invoice["id"], "100.00")
    fresh = client.get_sales_invoice(invoice["id"])
    assert fresh["status"]["id"] == "PART_PAID"
    assert to_decimal(fresh["outstanding_amount"]) == Decimal("800.00")
    changed = {i["id"]: i for i in client.iter_sales_invoices_changed_since(since)}
    assert changed[invoice["id"]]["status"]["id"] == "PART_PAID"
    assert list(client.iter_contact_payments_changed_since(since))
    assert list(client.iter_contact_allocations_changed_since(since))
    assert list(client.iter_sales_credit_notes_changed_since(since))
    other = client.create_sales_invoice(
        invoice_body(contact_id, ledger_id, reference="ODOO INV/2026/00043"),
        make_idempotency_id("test", "account.move", 12, 0),
    )
    voided = client.void_sales_invoice(other["id"], "Cancelled in Odoo")
    assert voided["status"]["id"] == "VOID"

    sent = [(m, p[len("/v3.1") :], b) for m, p, b in RecordingSession.sent]
    kinds = {(m, p) for m, p, _b in sent}
    assert set(BODY_OPERATIONS) <= kinds
    for method, path, body in sent:
        errors = schema.validate_body(BODY_OPERATIONS[(method, path)], body)
        assert errors == [], (path, errors)
    assert sb.stats()["missing_x_business"] == 0


def test_authorize_url_is_accepted_by_sandbox(sb, oauth):
    url = oauth.authorization_url("st", country="gb", locale="en-GB")
    query = parse_qs(urlsplit(url).query)
    assert query["filter"] == ["apiv3.1"]
    assert requests.get(url, timeout=5).status_code == 200
