"""Shared fixtures for the pure (no Odoo) tests: a running Sage sandbox and helpers.

* ``sandbox``  -- a fresh :class:`sage_sandbox.SageSandbox` on a free port (per test)
* ``app``      -- an OAuth client registered in it (client_id/secret/redirect_uri)
* ``sage_user``-- a user with two GB businesses (``user_id``, ``business_ids``)
* ``tokens``   -- a token pair for that user (no browser dance)
* ``api``      -- a tiny requests-based client bound to the first business
"""
from __future__ import annotations

import os
import sys

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sage_sandbox import SageSandbox  # noqa: E402

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
REDIRECT_URI = "http://localhost:8069/sage_one/oauth/callback"


class SandboxAPI:
    """Minimal HTTP client for the sandbox API (the product has its own client)."""

    def __init__(self, sandbox: SageSandbox, access_token: str, business_id: str | None):
        self.sandbox = sandbox
        self.access_token = access_token
        self.business_id = business_id
        self.session = requests.Session()

    def headers(self, business_id: str | None = None, **extra) -> dict:
        headers = {"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"}
        bid = business_id or self.business_id
        if bid:
            headers["X-Business"] = bid
        headers.update(extra)
        return headers

    def request(self, method: str, path: str, business_id: str | None = None,
                headers: dict | None = None, **kwargs) -> requests.Response:
        all_headers = self.headers(business_id)
        all_headers.update(headers or {})
        return self.session.request(method, self.sandbox.api_url + path, headers=all_headers,
                                    timeout=30, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: dict, **kwargs) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    # convenience ------------------------------------------------------------
    def ledger_id(self, nominal: int) -> str:
        items = self.get("/ledger_accounts", params={"attributes": "nominal_code",
                                                      "items_per_page": 200}).json()["$items"]
        return next(i["id"] for i in items if i["nominal_code"] == nominal)

    def create_customer(self, name: str = "Acme Ltd", **fields) -> dict:
        body = {"contact": {"name": name, "contact_type_ids": ["CUSTOMER"], **fields}}
        response = self.post("/contacts", body)
        assert response.status_code == 201, response.text
        return response.json()

    def create_invoice(self, contact_id: str, lines: list[dict] | None = None,
                       **fields) -> dict:
        if lines is None:  # the reference example: 1050.00 net + 200.00 VAT = 1250.00
            sales = self.ledger_id(4000)
            lines = [{"description": "Consulting", "ledger_account_id": sales,
                      "quantity": 10, "unit_price": 100.0, "tax_rate_id": "GB_STANDARD",
                      "tax_amount": 200.0},
                     {"description": "Licence", "ledger_account_id": sales, "quantity": 1,
                      "unit_price": 50.0, "tax_rate_id": "GB_ZERO"}]
        body = {"sales_invoice": {"contact_id": contact_id, "date": "2026-01-15",
                                  "invoice_lines": lines, **fields}}
        response = self.post("/sales_invoices", body)
        assert response.status_code == 201, response.text
        return response.json()

    def create_credit_note(self, contact_id: str, amount: float = 100.0, **fields) -> dict:
        lines = [{"description": "Credit", "ledger_account_id": self.ledger_id(4000),
                  "quantity": 1, "unit_price": amount, "tax_rate_id": "GB_ZERO"}]
        body = {"sales_credit_note": {"contact_id": contact_id, "date": "2026-01-20",
                                      "credit_note_lines": lines, **fields}}
        response = self.post("/sales_credit_notes", body)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def sandbox():
    sb = SageSandbox(host="127.0.0.1", port=0, seed=1)
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def app(sandbox):
    sandbox.register_app(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT_URI}


@pytest.fixture
def sage_user(sandbox):
    return sandbox.add_user(
        email="owner@example.com", first_name="Olivia", last_name="Owner",
        businesses=[
            {"name": "Demo Trading Ltd", "country": "GB", "subscription": "ACCOUNTING",
             "active": True},
            {"name": "Second Shop Ltd", "country": "GB", "subscription": "ACCOUNTS",
             "active": True},
        ])


@pytest.fixture
def tokens(sandbox, app, sage_user):
    return sandbox.issue_tokens(app["client_id"], sage_user["user_id"])


@pytest.fixture
def api(sandbox, tokens, sage_user):
    client = SandboxAPI(sandbox, tokens["access_token"], sage_user["business_ids"][0])
    yield client
    client.session.close()
