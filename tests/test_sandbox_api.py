"""Sandbox API behaviour: businesses, X-Business, reference data, contacts, invoices,
credit notes, pagination, incremental sync, idempotency, allocations and admin helpers."""
from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from sage_sandbox import SageError
from sage_sandbox.store import format_time

IDEM = "3f1c0a9e8d7b4c21a5e6f7081929aabb"


def _errors(response):
    body = response.json()
    assert isinstance(body, list), body
    for item in body:
        assert set(item) == {"$severity", "$dataCode", "$message", "$source"}
        assert item["$severity"] == "error"
    return body


# --------------------------------------------------------------------------- businesses

def test_businesses_user_and_filters(api, sage_user, sandbox):
    r = api.get("/businesses")
    assert r.status_code == 200
    body = r.json()
    assert body["$total"] == 2
    assert [i["displayed_as"] for i in body["$items"]] == ["Demo Trading Ltd", "Second Shop Ltd"]
    assert set(body["$items"][0]) == {"id", "displayed_as", "$path"}
    assert "X-Business" not in r.headers  # not echoed on /businesses and /user

    sandbox.add_business(sage_user["user_id"], "Lapsed Ltd", active=False)
    sandbox.add_business(sage_user["user_id"], "Payroll Ltd", product_family="sbc_payroll")
    assert api.get("/businesses").json()["$total"] == 4
    assert api.get("/businesses", params={"active_only": "true"}).json()["$total"] == 3
    names = [i["displayed_as"] for i in api.get(
        "/businesses", params={"product_family": "sbc_accounting", "active_only": "true"}
    ).json()["$items"]]
    assert names == ["Demo Trading Ltd", "Second Shop Ltd"]

    biz = api.get(f"/businesses/{sage_user['business_ids'][0]}").json()
    assert biz["subscriptions"][0]["id"] == "ACCOUNTING"
    assert biz["subscriptions"][0]["active"] is True
    assert biz["country"]["id"] == "GB"
    assert api.get("/businesses/lead").json()["id"] == sage_user["business_ids"][0]
    user = api.get("/user")
    assert user.json()["first_name"] == "Olivia" and "X-Business" not in user.headers


def test_x_business_echo_and_lead_fallback(api, sage_user, sandbox):
    second = sage_user["business_ids"][1]
    r = api.get("/financial_settings", business_id=second)
    assert r.status_code == 200
    assert r.headers["X-Business"] == second
    assert r.headers["x-request-id"]
    assert sandbox.stats()["missing_x_business"] == 0

    api.business_id = None
    r = api.get("/financial_settings")
    assert r.status_code == 200
    assert r.headers["X-Business"] == sage_user["business_ids"][0]  # the lead business
    assert sandbox.stats()["missing_x_business"] == 1
    assert r.json()["base_currency"]["id"] == "GBP"
    assert r.json()["multi_currency_enabled"] is False


def test_business_of_another_user_is_403_and_unknown_is_404(api, sandbox):
    other = sandbox.add_user(email="other@example.com", businesses=[{"name": "Not Yours"}])
    r = api.get("/contacts", business_id=other["business_ids"][0])
    assert r.status_code == 403
    _errors(r)
    r = api.get("/contacts", business_id="0" * 32)
    assert r.status_code == 404
    _errors(r)


def test_inactive_business_is_403(api, sandbox, sage_user):
    lapsed = sandbox.add_business(sage_user["user_id"], "Lapsed Ltd", active=False)
    assert api.get("/contacts", business_id=lapsed).status_code == 403


def test_data_is_scoped_per_business(api, sage_user):
    api.create_customer("Only In First")
    assert api.get("/contacts").json()["$total"] == 1
    assert api.get("/contacts", business_id=sage_user["business_ids"][1]).json()["$total"] == 0


# --------------------------------------------------------------------------- reference data

def test_reference_data(api):
    sales = api.get("/ledger_accounts", params={"visible_in": "sales",
                                                "attributes": "nominal_code,visible_in_sales"})
    codes = [i["nominal_code"] for i in sales.json()["$items"]]
    assert codes == [4000, 4010, 4900, 8100]
    assert all(i["visible_in_sales"] for i in sales.json()["$items"])
    everything = api.get("/ledger_accounts", params={"attributes": "nominal_code"}).json()
    assert everything["$total"] > len(codes)
    search = api.get("/ledger_accounts", params={"search": "bad debt"}).json()["$items"]
    assert [i["displayed_as"] for i in search] == ["Bad Debts (8100)"]

    rates = api.get("/tax_rates", params={"attributes": "percentage"}).json()["$items"]
    assert {r["id"]: r["percentage"] for r in rates} == {
        "GB_STANDARD": "20.0", "GB_REDUCED": "5.0", "GB_ZERO": "0.0", "GB_EXEMPT": "0.0",
        "GB_NO_TAX": "0.0"}
    assert {c["id"] for c in api.get("/currencies").json()["$items"]} >= {"GBP", "EUR", "USD"}
    assert [c["id"] for c in api.get("/contact_types").json()["$items"]] == ["CUSTOMER", "VENDOR"]
    settings = api.get("/invoice_settings").json()
    assert settings["sales_invoice_number_prefix"] == "SI-"
    assert settings["next_invoice_number"] == 1
    assert api.get("/tax_rates/GB_STANDARD").json()["percentage"] == "20.0"
    assert api.get("/tax_rates/XX").status_code == 404


# --------------------------------------------------------------------------- contacts

def test_contact_create_get_and_email_filter(api):
    created = api.create_customer("Acme Ltd", reference="ACME001", main_contact_person={
        "name": "Accounts", "email": "AP@Acme.example"})
    assert created["displayed_as"] == "Acme Ltd (ACME001)"
    assert created["contact_types"][0]["id"] == "CUSTOMER"
    api.create_customer("Acme Holdings", main_contact_person={"email": "ap@acme.example.org"})
    fetched = api.get(f"/contacts/{created['id']}").json()
    assert fetched["main_contact_person"]["email"] == "AP@Acme.example"

    found = api.get("/contacts", params={"email": "ap@acme.example"}).json()
    assert [i["id"] for i in found["$items"]] == [created["id"]]  # exact, case-insensitive
    assert api.get("/contacts", params={"email": "acme.example"}).json()["$total"] == 0
    assert api.get("/contacts", params={"search": "acme"}).json()["$total"] == 2
    assert api.get("/contacts", params={"search": "ACME001"}).json()["$total"] == 1
    vendor = api.post("/contacts", {"contact": {"name": "Supplier",
                                                "contact_type_ids": ["VENDOR"]}}).json()
    customers = api.get("/contacts", params={"contact_type_id": "CUSTOMER"}).json()
    assert vendor["id"] not in [i["id"] for i in customers["$items"]]
    assert customers["$total"] == 2


def test_contact_reference_unique_and_max_10(api):
    api.create_customer("First", reference="DUP")
    dup = api.post("/contacts", {"contact": {"name": "Second", "contact_type_ids": ["CUSTOMER"],
                                             "reference": "dup"}})
    assert dup.status_code == 422
    assert _errors(dup)[0]["$source"] == "reference"
    long = api.post("/contacts", {"contact": {"name": "Third", "contact_type_ids": ["CUSTOMER"],
                                              "reference": "ELEVENCHARS"}})
    assert long.status_code == 422
    err = _errors(long)[0]
    assert err["$source"] == "reference" and err["$dataCode"] == "RecordInvalid"
    assert "10" in err["$message"]


def test_contact_missing_required_fields(api):
    r = api.post("/contacts", {"contact": {"reference": "X"}})
    assert r.status_code == 422
    sources = {e["$source"] for e in _errors(r)}
    assert sources == {"name", "contact_type_ids"}


# --------------------------------------------------------------------------- invoices

def test_invoice_amounts_number_and_shape(api):
    contact = api.create_customer()
    sales_b = api.ledger_id(4010)
    inv = api.create_invoice(contact["id"], lines=[
        {"description": "Consulting, January", "ledger_account_id": api.ledger_id(4000),
         "quantity": 10, "unit_price": 100.0, "tax_rate_id": "GB_STANDARD", "tax_amount": 200.0},
        {"description": "Licence", "ledger_account_id": sales_b, "quantity": "1",
         "unit_price": "50.00", "tax_rate_id": "GB_ZERO"},
    ], reference="ODOO INV/2026/00042", notes="Thanks")
    assert inv["invoice_number"] == "SI-1" and inv["displayed_as"] == "SI-1"
    assert inv["$path"] == f"/sales_invoices/{inv['id']}"
    assert inv["net_amount"] == "1050.0"
    assert inv["tax_amount"] == "200.0"
    assert inv["total_amount"] == "1250.0"
    assert inv["outstanding_amount"] == "1250.0"
    assert inv["total_paid"] == "0.0"
    assert inv["status"]["id"] == "UNPAID"
    assert inv["due_date"] == "2026-02-14"
    assert inv["reference"] == "ODOO INV/2026/00042"
    assert inv["invoice_lines"][1]["tax_amount"] == "0.0"
    assert inv["created_at"].endswith("Z") and inv["updated_at"]
    second = api.create_invoice(contact["id"])
    assert second["invoice_number"] == "SI-2"
    assert api.get("/invoice_settings").json()["next_invoice_number"] == 3


def test_invoice_discount_and_tax_inclusive_lines(api):
    contact = api.create_customer()
    inv = api.create_invoice(contact["id"], lines=[
        {"description": "Discounted", "ledger_account_id": api.ledger_id(4000), "quantity": 2,
         "unit_price": 50, "discount_amount": 10, "tax_rate_id": "GB_STANDARD",
         "tax_amount": 18},
        {"description": "Gross", "ledger_account_id": api.ledger_id(4000), "quantity": 1,
         "unit_price": 120, "unit_price_includes_tax": True, "tax_rate_id": "GB_STANDARD",
         "tax_amount": 20},
    ])
    assert inv["invoice_lines"][0]["net_amount"] == "90.0"
    assert inv["invoice_lines"][1]["net_amount"] == "100.0"
    assert inv["total_amount"] == "228.0"
    assert inv["total_discount_amount"] == "10.0"


def test_client_supplied_invoice_number_and_duplicate(api):
    contact = api.create_customer()
    inv = api.create_invoice(contact["id"], invoice_number="INV/2026/0001")
    assert inv["invoice_number"] == "INV/2026/0001" and inv["displayed_as"] == "INV/2026/0001"
    dup = api.post("/sales_invoices", {"sales_invoice": {
        "contact_id": contact["id"], "date": "2026-01-15", "invoice_number": "INV/2026/0001",
        "invoice_lines": [{"description": "x", "ledger_account_id": api.ledger_id(4000),
                           "unit_price": 1, "tax_rate_id": "GB_ZERO"}]}})
    assert dup.status_code == 422
    err = _errors(dup)[0]
    assert err["$dataCode"] == "RecordInvalid" and err["$source"] == "invoice_number"
    assert api.get("/sales_invoices").json()["$total"] == 1


def test_generated_number_skips_a_client_supplied_one(api):
    contact = api.create_customer()
    api.create_invoice(contact["id"], invoice_number="SI-1")
    assert api.create_invoice(contact["id"])["invoice_number"] == "SI-2"


def test_invoice_validation_422_shapes(api):
    contact = api.create_customer()
    r = api.post("/sales_invoices", {"sales_invoice": {
        "contact_id": contact["id"], "reference": "R" * 26, "notes": "n" * 2001,
        "invoice_lines": [{"description": "x", "ledger_account_id": api.ledger_id(4000)},
                          {"description": "y", "ledger_account_id": api.ledger_id(4000),
                           "unit_price": "abc"}]}})
    assert r.status_code == 422
    errors = _errors(r)
    by_source = {e["$source"]: e for e in errors}
    assert set(by_source) == {"date", "reference", "notes", "invoice_lines.unit_price"}
    assert all(e["$dataCode"] == "RecordInvalid" for e in errors)
    assert "25" in by_source["reference"]["$message"]
    assert "2000" in by_source["notes"]["$message"]
    assert api.get("/sales_invoices").json()["$total"] == 0

    r = api.post("/sales_invoices", {"invoice": {}})
    assert r.status_code == 422 and _errors(r)[0]["$source"] == "sales_invoice"
    r = api.post("/sales_invoices", {"sales_invoice": {
        "contact_id": contact["id"], "date": "15/01/2026", "invoice_lines": []}})
    assert {e["$source"] for e in _errors(r)} == {"date"}


def test_invoice_business_rules(api):
    customer = api.create_customer()
    vendor = api.post("/contacts", {"contact": {"name": "Supplier",
                                                "contact_type_ids": ["VENDOR"]}}).json()
    sales = api.ledger_id(4000)
    line = {"description": "x", "ledger_account_id": sales, "unit_price": 10,
            "tax_rate_id": "GB_ZERO"}

    def post(**fields):
        body = {"contact_id": customer["id"], "date": "2026-01-15", "invoice_lines": [line]}
        body.update(fields)
        return api.post("/sales_invoices", {"sales_invoice": body})

    r = post(contact_id=vendor["id"])
    assert r.status_code == 422 and _errors(r)[0]["$source"] == "contact_id"
    r = post(contact_id="f" * 32)
    assert r.status_code == 404 and _errors(r)[0]["$dataCode"] == "RecordNotFound"
    r = post(invoice_lines=[{**line, "ledger_account_id": api.ledger_id(1200)}])
    assert r.status_code == 422
    assert _errors(r)[0]["$source"] == "invoice_lines.ledger_account_id"
    r = post(invoice_lines=[{**line, "tax_rate_id": "GB_STANDARD"}])
    assert r.status_code == 422 and _errors(r)[0]["$source"] == "invoice_lines.tax_amount"
    r = post(invoice_lines=[{**line, "tax_rate_id": "GB_EXEMPT"}])
    assert r.status_code == 201
    assert r.json()["invoice_number"] == "SI-1"  # the failed posts burnt no number
    r = post(currency_id="EUR")
    assert r.status_code == 422 and _errors(r)[0]["$source"] == "currency_id"


def test_http_error_codes(api, sandbox):
    r = api.get("/sales_invoices/" + "0" * 32)
    assert r.status_code == 404 and _errors(r)[0]["$dataCode"] == "RecordNotFound"
    r = api.request("PATCH", "/contacts")
    assert r.status_code == 405 and "POST" in r.headers["Allow"]
    _errors(r)
    r = api.request("POST", "/contacts", data="name=x",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    _errors(r)
    r = api.request("POST", "/contacts", data="{not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    _errors(r)
    r = api.get("/no_such_resource")
    assert r.status_code == 404
    _errors(r)


def test_get_single_invoice_marks_as_sent_unless_told_not_to(api):
    inv = api.create_invoice(api.create_customer()["id"])
    assert inv["sent"] is False
    assert api.get(f"/sales_invoices/{inv['id']}",
                   params={"mark_as_sent": "false"}).json()["sent"] is False
    assert api.get(f"/sales_invoices/{inv['id']}").json()["sent"] is True


def test_void_via_delete(api, sandbox):
    inv = api.create_invoice(api.create_customer()["id"])
    r = api.delete(f"/sales_invoices/{inv['id']}")
    assert r.status_code == 422 and _errors(r)[0]["$source"] == "void_reason"
    r = api.delete(f"/sales_invoices/{inv['id']}", params={"void_reason": "Raised in error"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"]["id"] == "VOID"
    assert body["void_reason"] == "Raised in error"
    assert body["outstanding_amount"] == "0.0"
    listed = api.get("/sales_invoices", params={"status_id": "VOID"}).json()
    assert [i["id"] for i in listed["$items"]] == [inv["id"]]


def test_delete_draft_is_a_delete_seen_through_deleted_since(api, sandbox):
    contact = api.create_customer()
    draft = api.create_invoice(contact["id"], status_id="DRAFT")
    assert draft["status"]["id"] == "DRAFT"
    before = "2000-01-01T00:00:00Z"
    assert api.delete(f"/sales_invoices/{draft['id']}").status_code == 200
    assert api.get(f"/sales_invoices/{draft['id']}").status_code == 404
    assert api.get("/sales_invoices").json()["$total"] == 0
    deleted = api.get("/sales_invoices", params={"deleted_since": before}).json()
    assert [i["id"] for i in deleted["$items"]] == [draft["id"]]


# --------------------------------------------------------------------------- pagination

def test_pagination_over_450_invoices_with_attributes(api, sandbox):
    contact = api.create_customer()
    sales = api.ledger_id(4000)
    with sandbox.lock:
        for n in range(450):
            sandbox.state.create_artefact("sales_invoices", api.business_id, {
                "contact_id": contact["id"], "date": "2026-01-15", "reference": f"R{n}",
                "invoice_lines": [{"description": "x", "ledger_account_id": sales,
                                   "unit_price": n + 1, "tax_rate_id": "GB_ZERO"}]})
    first = api.get("/sales_invoices").json()
    assert first["$total"] == 450 and first["$itemsPerPage"] == 20 and len(first["$items"]) == 20
    assert set(first["$items"][0]) == {"id", "displayed_as", "$path"}
    assert first["$back"] is None
    assert first["$next"] == "/sales_invoices?page=2&items_per_page=20"

    seen, pages = [], 0
    path = "/sales_invoices?items_per_page=200&attributes=total_amount,status"
    while path:
        body = api.get(path).json()
        pages += 1
        for item in body["$items"]:
            assert set(item) == {"id", "displayed_as", "$path", "total_amount", "status"}
        seen += body["$items"]
        path = body["$next"]
        assert body["$itemsPerPage"] == 200
    assert pages == 3
    assert len({i["id"] for i in seen}) == 450
    assert sum(Decimal(i["total_amount"]) for i in seen) == Decimal(450 * 451 // 2)

    capped = api.get("/sales_invoices", params={"items_per_page": 1000}).json()
    assert capped["$itemsPerPage"] == 200
    last = api.get("/sales_invoices", params={"page": 99, "items_per_page": 200}).json()
    assert last["$page"] == 3 and len(last["$items"]) == 50 and last["$next"] is None
    assert last["$back"] == "/sales_invoices?page=2&items_per_page=200"
    found = api.get("/sales_invoices", params={"search": "R449"}).json()
    assert found["$total"] == 1
    full = api.get("/sales_invoices", params={"attributes": "all", "items_per_page": 1}).json()
    assert "invoice_lines" in full["$items"][0]


def test_updated_or_created_since_is_inclusive_and_tracks_allocations(api, sandbox):
    contact = api.create_customer()
    old = api.create_invoice(contact["id"])
    sandbox.advance_clock(60)
    fresh = api.create_invoice(contact["id"])
    since = fresh["created_at"]
    ids = [i["id"] for i in api.get("/sales_invoices",
                                     params={"updated_or_created_since": since}).json()["$items"]]
    assert ids == [fresh["id"]]
    sandbox.advance_clock(60)
    mark = format_time(sandbox.state.now())
    sandbox.advance_clock(1)
    payment = sandbox.record_payment(old["id"], "100.00")
    changed = api.get("/sales_invoices", params={"updated_or_created_since": mark,
                                                 "attributes": "status"}).json()["$items"]
    assert [(i["id"], i["status"]["id"]) for i in changed] == [(old["id"], "PART_PAID")]
    payments = api.get("/contact_payments", params={
        "updated_or_created_since": mark, "attributes": "allocated_artefacts,total_amount"}
    ).json()["$items"]
    assert [p["id"] for p in payments] == [payment["id"]]
    assert payments[0]["allocated_artefacts"][0]["artefact"]["id"] == old["id"]
    # '+01:00' offsets (even unencoded, arriving as a space) are understood
    r = api.get("/sales_invoices?updated_or_created_since=2000-01-01T00:00:00+01:00")
    assert r.json()["$total"] == 2
    r = api.get("/sales_invoices", params={"updated_or_created_since": "yesterday"})
    assert r.status_code == 422


def test_sort_and_date_filters(api):
    contact = api.create_customer()
    a = api.create_invoice(contact["id"], date="2026-03-01")
    b = api.create_invoice(contact["id"], date="2026-01-01")
    ids = [i["id"] for i in api.get("/sales_invoices", params={"sort": "date:asc"})
           .json()["$items"]]
    assert ids == [b["id"], a["id"]]
    ids = [i["id"] for i in api.get("/sales_invoices", params={"from_date": "2026-02-01"})
           .json()["$items"]]
    assert ids == [a["id"]]
    assert api.get("/sales_invoices", params={"contact_id": contact["id"],
                                              "to_date": "2026-01-31"}).json()["$total"] == 1


# --------------------------------------------------------------------------- idempotency

def test_idempotent_replay_returns_first_response(api, sandbox):
    contact = api.create_customer()
    body = {"sales_invoice": {
        "idempotency_id": IDEM, "contact_id": contact["id"], "date": "2026-01-15",
        "invoice_lines": [{"description": "x", "ledger_account_id": api.ledger_id(4000),
                           "unit_price": 10, "tax_rate_id": "GB_ZERO"}]}}
    first = api.post("/sales_invoices", body)
    second = api.post("/sales_invoices", body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert api.get("/sales_invoices").json()["$total"] == 1
    assert sandbox.stats()["idempotent_replays"] == 1
    other = dict(body["sales_invoice"], idempotency_id=IDEM[::-1])
    third = api.post("/sales_invoices", {"sales_invoice": other})
    assert third.json()["id"] != first.json()["id"]
    bad = api.post("/sales_invoices", {"sales_invoice": dict(body["sales_invoice"],
                                                             idempotency_id="not-a-guid")})
    assert bad.status_code == 422 and _errors(bad)[0]["$source"] == "idempotency_id"


def test_idempotency_applies_to_contacts_and_is_per_business(api, sage_user):
    body = {"contact": {"idempotency_id": IDEM, "name": "Acme",
                        "contact_type_ids": ["CUSTOMER"]}}
    a = api.post("/contacts", body).json()
    assert api.post("/contacts", body).json()["id"] == a["id"]
    b = api.post("/contacts", body, business_id=sage_user["business_ids"][1])
    assert b.status_code == 201 and b.json()["id"] != a["id"]


# ------------------------------------------------------------------ credit notes, allocations

def test_credit_note_and_allocation_statuses(api):
    contact = api.create_customer()
    inv = api.create_invoice(contact["id"])  # 1250.00
    note = api.create_credit_note(contact["id"], amount=250)
    assert note["credit_note_number"] == "SCN-1" and note["displayed_as"] == "SCN-1"
    assert note["status"]["id"] == "UNPAID" and note["total_amount"] == "250.0"

    alloc = api.post("/contact_allocations", {"contact_allocation": {
        "transaction_type_id": "CUSTOMER_ALLOCATION", "contact_id": contact["id"],
        "date": "2026-03-31", "allocated_artefacts": [
            {"artefact_id": inv["id"], "amount": 250.0},
            {"artefact_id": note["id"], "amount": -250.0}]}})
    assert alloc.status_code == 201, alloc.text
    assert alloc.json()["transaction_type"]["id"] == "CUSTOMER_ALLOCATION"
    inv2 = api.get(f"/sales_invoices/{inv['id']}", params={
        "show_payments_allocations": "true"}).json()
    assert inv2["status"]["id"] == "PART_PAID"
    assert inv2["outstanding_amount"] == "1000.0" and inv2["total_paid"] == "250.0"
    assert inv2["updated_at"] >= inv["updated_at"]
    assert inv2["payments_allocations"][0]["contact_allocation"]["id"] == alloc.json()["id"]
    note2 = api.get(f"/sales_credit_notes/{note['id']}").json()
    assert note2["status"]["id"] == "PAID" and note2["outstanding_amount"] == "0.0"

    # the credit note is settled: a second allocation is refused
    again = api.post("/contact_allocations", {"contact_allocation": {
        "transaction_type_id": "CUSTOMER_ALLOCATION", "contact_id": contact["id"],
        "allocated_artefacts": [{"artefact_id": inv["id"], "amount": 10},
                                {"artefact_id": note["id"], "amount": -10}]}})
    assert again.status_code == 422
    assert _errors(again)[0]["$message"] == "You can only pay unpaid or part-paid invoices."
    listed = api.get("/contact_allocations", params={"attributes": "allocated_artefacts"}).json()
    assert listed["$total"] == 1
    assert len(listed["$items"][0]["allocated_artefacts"]) == 2


def test_allocation_rules(api):
    contact = api.create_customer()
    inv = api.create_invoice(contact["id"])
    note = api.create_credit_note(contact["id"], amount=2000)

    def alloc(items, **extra):
        return api.post("/contact_allocations", {"contact_allocation": {
            "transaction_type_id": "CUSTOMER_ALLOCATION", "contact_id": contact["id"],
            "allocated_artefacts": items, **extra}})

    r = alloc([{"artefact_id": inv["id"], "amount": 100},
               {"artefact_id": note["id"], "amount": -90}])
    assert r.status_code == 422 and "zero" in _errors(r)[0]["$message"]
    r = alloc([{"artefact_id": inv["id"], "amount": 1300},
               {"artefact_id": note["id"], "amount": -1300}])
    assert r.status_code == 422
    assert _errors(r)[0]["$message"] == "You can only pay unpaid or part-paid invoices."
    r = alloc([{"artefact_id": inv["id"], "amount": -100},
               {"artefact_id": note["id"], "amount": 100}])
    assert r.status_code == 422
    r = api.post("/contact_allocations", {"contact_allocation": {"contact_id": contact["id"]}})
    assert {e["$source"] for e in _errors(r)} == {"transaction_type_id", "allocated_artefacts"}
    r = alloc([{"artefact_id": inv["id"], "amount": 1250},
               {"artefact_id": note["id"], "amount": -1250}])
    assert r.status_code == 201
    assert api.get(f"/sales_invoices/{inv['id']}").json()["status"]["id"] == "PAID"
    assert api.get(f"/sales_credit_notes/{note['id']}").json()["status"]["id"] == "PART_PAID"


def test_allocations_refused_on_accounting_start(api, sandbox, sage_user):
    start = sandbox.add_business(sage_user["user_id"], "Start Ltd", subscription="START")
    api.business_id = start
    contact = api.create_customer()
    inv = api.create_invoice(contact["id"])
    note = api.create_credit_note(contact["id"], amount=10)
    r = api.post("/contact_allocations", {"contact_allocation": {
        "transaction_type_id": "CUSTOMER_ALLOCATION", "contact_id": contact["id"],
        "allocated_artefacts": [{"artefact_id": inv["id"], "amount": 10},
                                {"artefact_id": note["id"], "amount": -10}]}})
    assert r.status_code == 403


def test_contact_payment_post(api):
    contact = api.create_customer()
    inv = api.create_invoice(contact["id"])
    bank = api.get("/bank_accounts").json()["$items"][0]["id"]
    body = {"contact_payment": {
        "transaction_type_id": "CUSTOMER_RECEIPT", "payment_method_id": "CREDIT_DEBIT",
        "contact_id": contact["id"], "bank_account_id": bank, "date": "2026-02-01",
        "total_amount": "1300.00",
        "allocated_artefacts": [{"artefact_id": inv["id"], "amount": "1250.00"}]}}
    r = api.post("/contact_payments", body)
    assert r.status_code == 201, r.text
    pay = r.json()
    assert pay["total_amount"] == "1300.0"
    assert pay["payment_on_account"]["outstanding_amount"] == "50.0"
    inv2 = api.get(f"/sales_invoices/{inv['id']}").json()
    assert inv2["status"]["id"] == "PAID" and inv2["last_paid"] == "2026-02-01"
    missing = api.post("/contact_payments", {"contact_payment": {
        "transaction_type_id": "CUSTOMER_RECEIPT", "contact_id": contact["id"]}})
    assert {e["$source"] for e in _errors(missing)} == {"bank_account_id", "date",
                                                         "total_amount"}
    over = api.post("/contact_payments", body)
    assert over.status_code == 422


def test_transactions_feed(api, sandbox):
    contact = api.create_customer()
    inv = api.create_invoice(contact["id"])
    sandbox.record_payment(inv["id"], 1250)
    feed = api.get("/transactions", params={"updated_or_created_since": "2000-01-01",
                                            "attributes": "transaction_type,origin,deleted"})
    types = [t["transaction_type"]["id"] for t in feed.json()["$items"]]
    assert types == ["SALES_INVOICE", "CUSTOMER_RECEIPT"]
    assert feed.json()["$items"][0]["origin"]["id"] == inv["id"]


# --------------------------------------------------------------------------- admin helpers

def test_record_payment_part_paid_then_paid(api, sandbox):
    inv = api.create_invoice(api.create_customer()["id"])
    sandbox.record_payment(inv["id"], "250.00", date="2026-02-01")
    got = api.get(f"/sales_invoices/{inv['id']}").json()
    assert got["status"]["id"] == "PART_PAID" and got["outstanding_amount"] == "1000.0"
    sandbox.record_payment(inv["id"], 1000)
    got = api.get(f"/sales_invoices/{inv['id']}").json()
    assert got["status"]["id"] == "PAID" and got["outstanding_amount"] == "0.0"
    assert got["total_paid"] == "1250.0"
    payments = api.get("/contact_payments").json()
    assert payments["$total"] == 2


def test_void_helper(api, sandbox):
    inv = api.create_invoice(api.create_customer()["id"])
    out = sandbox.void(inv["id"], "Customer cancelled")
    assert out["status"]["id"] == "VOID"
    assert api.get(f"/sales_invoices/{inv['id']}").json()["void_reason"] == "Customer cancelled"


def test_void_refused_when_paid(api, sandbox):
    inv = api.create_invoice(api.create_customer()["id"])
    sandbox.record_payment(inv["id"], 1)
    r = api.delete(f"/sales_invoices/{inv['id']}", params={"void_reason": "x"})
    assert r.status_code == 422


def test_write_off_creates_bad_debt_credit_note_and_allocation(api, sandbox):
    inv = api.create_invoice(api.create_customer()["id"])  # 1050 net + 200 VAT
    sandbox.record_payment(inv["id"], 250)
    out = sandbox.write_off(inv["id"])
    note, alloc = out["sales_credit_note"], out["contact_allocation"]
    assert note["total_amount"] == "1000.0"
    assert note["credit_note_lines"][0]["ledger_account"]["id"] == api.ledger_id(8100)
    assert note["net_amount"] == "840.0" and note["tax_amount"] == "160.0"  # original VAT rate
    assert note["credit_note_lines"][0]["tax_rate"]["id"] == "GB_STANDARD"
    assert {a["artefact"]["id"]: a["amount"] for a in alloc["allocated_artefacts"]} == {
        inv["id"]: "1000.0", note["id"]: "-1000.0"}
    got = api.get(f"/sales_invoices/{inv['id']}").json()
    assert got["status"]["id"] == "PAID" and got["outstanding_amount"] == "0.0"
    assert api.get(f"/sales_credit_notes/{note['id']}").json()["status"]["id"] == "PAID"


def test_admin_http_routes(sandbox):
    base = sandbox.url + "/_sandbox"
    assert requests.post(base + "/apps", timeout=10, json={
        "client_id": "c", "client_secret": "s", "redirect_uris": ["http://x/cb"]}).ok
    user = requests.post(base + "/users", timeout=10, json={
        "email": "h@example.com", "businesses": [{"name": "HTTP Ltd"}]}).json()
    assert len(user["business_ids"]) == 1
    loc = requests.post(base + "/approve", timeout=10, json={
        "client_id": "c", "redirect_uri": "http://x/cb", "state": "q"}).json()["location"]
    assert "code=GB%2F" in loc
    tok = requests.post(base + "/tokens", json={"client_id": "c"}, timeout=10).json()
    headers = {"Authorization": f"Bearer {tok['access_token']}", "X-Business":
               user["business_ids"][0]}
    contact = requests.post(sandbox.api_url + "/contacts", headers=headers, timeout=10, json={
        "contact": {"name": "C", "contact_type_ids": ["CUSTOMER"]}}).json()
    ledger = [i for i in requests.get(sandbox.api_url + "/ledger_accounts", headers=headers,
                                      params={"attributes": "nominal_code"}, timeout=10)
              .json()["$items"] if i["nominal_code"] == 4000][0]
    inv = requests.post(sandbox.api_url + "/sales_invoices", headers=headers, timeout=10, json={
        "sales_invoice": {"contact_id": contact["id"], "date": "2026-01-01", "invoice_lines": [
            {"description": "x", "ledger_account_id": ledger["id"], "unit_price": 100,
             "tax_rate_id": "GB_ZERO"}]}}).json()
    pay = requests.post(base + "/record_payment", timeout=10,
                        json={"invoice_id": inv["id"], "amount": "40"})
    assert pay.status_code == 201 and pay.json()["total_amount"] == "40.0"
    wo = requests.post(base + "/write_off", json={"invoice_id": inv["id"]}, timeout=10).json()
    assert wo["sales_credit_note"]["total_amount"] == "60.0"
    inv2 = requests.post(sandbox.api_url + "/sales_invoices", headers=headers, timeout=10, json={
        "sales_invoice": {"contact_id": contact["id"], "date": "2026-01-01", "invoice_lines": [
            {"description": "x", "ledger_account_id": ledger["id"], "unit_price": 5,
             "tax_rate_id": "GB_ZERO"}]}}).json()
    void = requests.post(base + "/void", json={"artefact_id": inv2["id"], "reason": "r"},
                         timeout=10)
    assert void.json()["status"]["id"] == "VOID"
    assert requests.post(base + "/expire_access_tokens", timeout=10).json()["expired"] == 1
    assert requests.get(sandbox.api_url + "/user", headers=headers, timeout=10).status_code == 401
    assert requests.post(base + "/fail_next", json={"n": 1, "status": 503}, timeout=10).ok
    assert requests.get(sandbox.api_url + "/user", timeout=10).status_code == 503
    faults = requests.post(base + "/faults", json={"rate_429": 0.5}, timeout=10).json()
    assert faults["rate_429"] == 0.5
    assert requests.post(base + "/faults", json={}, timeout=10).json()["rate_429"] == 0.0
    stats = requests.get(base + "/stats", timeout=10).json()
    assert stats["by_route"]["POST /sales_invoices"] == 2
    assert stats["faults_injected"] == {"503": 1}
    assert requests.post(base + "/reset_stats", timeout=10).json()["requests"] == 0
    dump = requests.get(base + "/state", timeout=10).json()
    assert len(dump["sales_invoices"]) == 2 and "access_tokens" not in dump
    assert requests.get(base + "/nope", timeout=10).status_code == 404
    assert requests.post(base + "/void", json={}, timeout=10).status_code == 400


def test_helpers_raise_sage_error_on_business_rule_failures(api, sandbox):
    inv = api.create_invoice(api.create_customer()["id"])
    sandbox.record_payment(inv["id"], "1250.00")
    with pytest.raises(SageError) as info:
        sandbox.write_off(inv["id"])
    assert info.value.status == 422
    assert info.value.errors[0]["$message"] == "You can only pay unpaid or part-paid invoices."
    with pytest.raises(SageError) as info:
        sandbox.record_payment("0" * 32, 1)
    assert info.value.status == 404
    with pytest.raises(ValueError):
        sandbox.issue_tokens("unknown-client")
