"""Fault switches, latency/concurrency and stats of the sandbox."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests


def _invoice_body(api, contact_id, **fields):
    return {"sales_invoice": {"contact_id": contact_id, "date": "2026-01-15", "invoice_lines": [
        {"description": "x", "ledger_account_id": api.ledger_id(4000), "unit_price": 10,
         "tax_rate_id": "GB_ZERO"}], **fields}}


def test_fail_next_429_with_retry_after(api, sandbox):
    sandbox.set_faults(retry_after=7)
    sandbox.fail_next(1, 429, path_contains="GET /contacts")
    r = api.get("/contacts")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "7"
    assert r.json()[0]["$severity"] == "error"
    assert api.get("/contacts").status_code == 200  # only one
    assert sandbox.stats()["faults_injected"] == {"429": 1}


def test_fail_next_5xx_does_not_save(api, sandbox):
    contact = api.create_customer()
    sandbox.fail_next(2, 500, path_contains="POST /sales_invoices")
    for _ in range(2):
        r = api.post("/sales_invoices", _invoice_body(api, contact["id"]))
        assert r.status_code == 500
        assert r.json()[0]["$dataCode"]
    assert api.get("/sales_invoices").json()["$total"] == 0
    assert api.post("/sales_invoices", _invoice_body(api, contact["id"])).status_code == 201
    sandbox.fail_next(1, 503)
    assert api.get("/user").status_code == 503


def test_fail_next_matches_path_only(api, sandbox):
    sandbox.fail_next(1, 503, path_contains="sales_credit_notes")
    assert api.get("/sales_invoices").status_code == 200
    assert api.get("/sales_credit_notes").status_code == 503


def test_drop_after_save_saves_then_closes_the_connection(api, sandbox):
    contact = api.create_customer()
    sandbox.fail_next(1, "drop_after_save", path_contains="POST /sales_invoices")
    with pytest.raises(requests.ConnectionError):
        api.post("/sales_invoices", _invoice_body(api, contact["id"], reference="DROPPED"))
    listed = api.get("/sales_invoices", params={"attributes": "reference"}).json()
    assert [i["reference"] for i in listed["$items"]] == ["DROPPED"]  # the write happened
    assert sandbox.stats()["faults_injected"] == {"drop_after_save": 1}
    assert sandbox.stats()["writes"] == 2  # contact + invoice


def test_drop_after_save_with_idempotency_replays_the_saved_record(api, sandbox):
    contact = api.create_customer()
    body = _invoice_body(api, contact["id"], idempotency_id="a" * 32)
    sandbox.fail_next(1, "drop_after_save", path_contains="POST /sales_invoices")
    with pytest.raises(requests.ConnectionError):
        api.post("/sales_invoices", body)
    retry = api.post("/sales_invoices", body)
    assert retry.status_code == 201
    assert api.get("/sales_invoices").json()["$total"] == 1
    assert sandbox.stats()["idempotent_replays"] == 1


def test_drop_before_save_does_not_save(api, sandbox):
    contact = api.create_customer()
    sandbox.fail_next(1, "drop_before_save", path_contains="POST /sales_invoices")
    with pytest.raises(requests.ConnectionError):
        api.post("/sales_invoices", _invoice_body(api, contact["id"]))
    assert api.get("/sales_invoices").json()["$total"] == 0


def test_fault_on_token_endpoint(sandbox, app, tokens):
    sandbox.fail_next(1, 503, path_contains="/token")
    r = requests.post(sandbox.token_url, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": app["client_id"], "client_secret": app["client_secret"]})
    assert r.status_code == 503
    # the refresh token was not consumed by the failed call
    r = requests.post(sandbox.token_url, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": app["client_id"], "client_secret": app["client_secret"]})
    assert r.status_code == 200


def test_fail_next_rejects_unknown_status(sandbox):
    with pytest.raises(ValueError):
        sandbox.fail_next(1, "explode")


def test_random_faults_are_seeded_and_counted(api, sandbox):
    sandbox.set_faults(rate_429=0.3, rate_5xx=0.2)
    codes = [api.get("/currencies").status_code for _ in range(100)]
    sandbox.set_faults()
    assert set(codes) <= {200, 429, 500, 503}
    n429 = codes.count(429)
    n5xx = codes.count(500) + codes.count(503)
    assert 10 <= n429 <= 50 and 5 <= n5xx <= 40
    injected = sandbox.stats()["faults_injected"]
    assert injected.get("429", 0) == n429
    assert injected.get("500", 0) + injected.get("503", 0) == n5xx
    assert all(api.get("/currencies").status_code == 200 for _ in range(10))


def test_random_drop_after_save_only_hits_writes(api, sandbox):
    contact = api.create_customer()
    sandbox.set_faults(drop_after_save=1.0)
    assert api.get("/contacts").status_code == 200
    with pytest.raises(requests.ConnectionError):
        api.post("/sales_invoices", _invoice_body(api, contact["id"]))
    sandbox.set_faults()
    assert api.get("/sales_invoices").json()["$total"] == 1


def test_latency_does_not_serialise_requests(api, sandbox):
    api.get("/user")  # warm up
    sandbox.set_faults(latency=0.2)
    sandbox.reset_stats()

    def call(_):
        r = requests.get(sandbox.api_url + "/contacts", headers=api.headers(), timeout=10)
        return r.status_code

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(call, range(10)))
    elapsed = time.monotonic() - start
    assert codes == [200] * 10
    stats = sandbox.stats()
    assert stats["requests"] == 10
    assert stats["max_in_flight"] >= 5  # requests overlapped inside the server
    assert elapsed < 10 * 0.2 * 0.6  # far below the 2 s a serialised server would need

    sandbox.set_faults(latency=0.0)
    start = time.monotonic()
    api.get("/contacts")
    assert time.monotonic() - start < 0.2


def test_concurrent_invoice_creation_numbers_are_unique(api, sandbox):
    contact = api.create_customer()
    body = _invoice_body(api, contact["id"])
    sandbox.set_faults(latency=0.05)

    def post(_):
        r = requests.post(sandbox.api_url + "/sales_invoices", json=body, timeout=30,
                          headers=api.headers())
        return r.status_code, r.json().get("invoice_number")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(post, range(60)))
    assert {code for code, _ in results} == {201}
    numbers = [n for _, n in results]
    assert len(set(numbers)) == 60
    assert sorted(int(n.split("-")[1]) for n in numbers) == list(range(1, 61))


def test_stats_by_route_and_status(api, sandbox):
    sandbox.reset_stats()
    contact = api.create_customer()
    api.get(f"/contacts/{contact['id']}")
    api.get("/contacts/" + "0" * 32)
    stats = sandbox.stats()
    assert stats["by_route"] == {"POST /contacts": 1, "GET /contacts/{id}": 2}
    assert stats["by_status"] == {"201": 1, "200": 1, "404": 1}
    assert stats["requests"] == 3 and stats["writes"] == 1
    requests.get(sandbox.url + "/_sandbox/stats", timeout=10)
    assert sandbox.stats()["requests"] == 3  # admin routes are not counted
