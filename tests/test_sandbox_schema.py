"""Swagger conformance: every body the sandbox returns validates against Sage's definitions,
and the public validate_body / validate_response helpers catch real violations."""
from __future__ import annotations

from decimal import Decimal

import pytest

from sage_sandbox import schema, validate_body, validate_response
from sage_sandbox.store import format_decimal


def _assert_valid(definition, obj):
    errors = validate_response(definition, obj)
    assert errors == [], f"{definition}: {errors}"


def _assert_list_valid(definition, envelope):
    assert schema.validate_envelope(envelope, definition) == []


@pytest.fixture
def populated(api, sandbox):
    """One of everything: customer, invoice (part paid), credit note, allocation, payment."""
    contact = api.create_customer("Acme Ltd", reference="ACME001", main_address={
        "address_line_1": "1 High Street", "city": "London", "postal_code": "EC1A 1AA",
        "country_id": "GB"}, main_contact_person={"name": "AP", "email": "ap@acme.example"})
    invoice = api.create_invoice(contact["id"], reference="INV/1", main_address={
        "address_line_1": "1 High Street", "country_id": "GB"})
    note = api.create_credit_note(contact["id"], amount=100)
    alloc = api.post("/contact_allocations", {"contact_allocation": {
        "transaction_type_id": "CUSTOMER_ALLOCATION", "contact_id": contact["id"],
        "allocated_artefacts": [{"artefact_id": invoice["id"], "amount": 100},
                                {"artefact_id": note["id"], "amount": -100}]}}).json()
    payment = sandbox.record_payment(invoice["id"], "50.00")
    return {"contact": contact, "invoice": invoice, "note": note, "allocation": alloc,
            "payment": payment}


SINGLE_GETS = [
    ("/financial_settings", "FinancialSettings"),
    ("/invoice_settings", "InvoiceSettings"),
    ("/user", "User"),
    ("/businesses/lead", "Business"),
    ("/tax_rates/GB_STANDARD", "TaxRate"),
    ("/currencies/GBP", "Currency"),
    ("/contact_types/CUSTOMER", "ContactType"),
]

LISTS = [
    ("/businesses", "Business"),
    ("/ledger_accounts", "LedgerAccount"),
    ("/tax_rates", "TaxRate"),
    ("/currencies", "Currency"),
    ("/contact_types", "ContactType"),
    ("/contacts", "Contact"),
    ("/sales_invoices", "SalesInvoice"),
    ("/sales_credit_notes", "SalesCreditNote"),
    ("/contact_allocations", "ContactAllocation"),
    ("/contact_payments", "ContactPayment"),
    ("/bank_accounts", "BankAccount"),
    ("/transactions", "Transaction"),
]


@pytest.mark.parametrize("path,definition", SINGLE_GETS)
def test_single_resources_conform(api, populated, path, definition):
    r = api.get(path)
    assert r.status_code == 200
    _assert_valid(definition, r.json())


@pytest.mark.parametrize("path,definition", LISTS)
def test_lists_conform_with_and_without_attributes(api, populated, path, definition):
    plain = api.get(path).json()
    assert plain["$total"] >= 1
    _assert_list_valid(definition, plain)
    full = api.get(path, params={"attributes": "all"}).json()
    _assert_list_valid(definition, full)
    for item in full["$items"][:5]:
        if item.get("$path", "").startswith(path + "/"):
            single = api.get(item["$path"])
            assert single.status_code == 200, item["$path"]
            _assert_valid(definition, single.json())


def test_created_objects_conform(api, populated):
    _assert_valid("Contact", populated["contact"])
    _assert_valid("SalesInvoice", populated["invoice"])
    _assert_valid("SalesCreditNote", populated["note"])
    _assert_valid("ContactAllocation", populated["allocation"])
    _assert_valid("ContactPayment", populated["payment"])
    inv = api.get(f"/sales_invoices/{populated['invoice']['id']}",
                  params={"show_payments_allocations": "true"}).json()
    assert len(inv["payments_allocations"]) == 2
    _assert_valid("SalesInvoice", inv)
    note = api.create_credit_note(populated["contact"]["id"])
    voided = api.delete(f"/sales_credit_notes/{note['id']}", params={"void_reason": "test"})
    assert voided.status_code == 200
    voided = voided.json()
    _assert_valid("SalesCreditNote", voided)


def test_write_off_output_conforms(api, sandbox, populated):
    out = sandbox.write_off(populated["invoice"]["id"])
    _assert_valid("SalesCreditNote", out["sales_credit_note"])
    _assert_valid("ContactAllocation", out["contact_allocation"])


def test_money_is_serialised_as_numeric_strings(populated):
    inv = populated["invoice"]
    for key in ("net_amount", "tax_amount", "total_amount", "outstanding_amount", "total_paid"):
        assert isinstance(inv[key], str) and float(inv[key]) >= 0
    assert format_decimal(Decimal("1250.00")) == "1250.0"
    assert format_decimal(Decimal("12.50")) == "12.5"
    assert format_decimal(Decimal("0.00")) == "0.0"
    assert format_decimal(Decimal("-3.10")) == "-3.1"


# --------------------------------------------------------------------------- helpers can fail

def test_validate_response_catches_violations():
    bad = {"id": 123, "total_amount": "twelve", "status": "UNPAID", "date": "15/01/2026",
           "invoice_lines": {"not": "a list"}}
    sources = {e["$source"] for e in validate_response("SalesInvoice", bad)}
    assert sources == {"id", "total_amount", "status", "date", "invoice_lines"}
    assert validate_response("Contact", {"reference": "ELEVENCHARS"})[0]["$source"] == "reference"
    with pytest.raises(KeyError):
        validate_response("NoSuchDefinition", {})


def test_validate_body_required_and_types():
    errors = validate_body("postSalesInvoices", {"sales_invoice": {
        "date": "2026-01-15", "invoice_lines": [{"description": "x", "unit_price": "1.5"},
                                                {"ledger_account_id": "a", "unit_price": True}]}})
    assert {(e["$source"], e["$message"].split(" (")[0]) for e in errors} == {
        ("contact_id", "can't be blank"),
        ("invoice_lines.ledger_account_id", "can't be blank"),
        ("invoice_lines.description", "can't be blank"),
        ("invoice_lines.unit_price", "is not a number"),
    }
    assert all(e["$dataCode"] == "RecordInvalid" and e["$severity"] == "error" for e in errors)
    assert "invoice_lines[1]" in next(e for e in errors
                                      if e["$source"] == "invoice_lines.unit_price")["$message"]


def test_validate_body_accepts_a_good_body_and_idempotency_id():
    body = {"sales_invoice": {"idempotency_id": "0123456789abcdef0123456789ABCDEF",
                              "contact_id": "c", "date": "2026-01-15", "due_date": None,
                              "invoice_lines": [{"description": "x", "ledger_account_id": "l",
                                                 "unit_price": "12.50", "quantity": 2}]}}
    assert validate_body("postSalesInvoices", body) == []
    body["sales_invoice"]["idempotency_id"] = "with-hyphens-0123456789abcdef0123"
    assert [e["$source"] for e in validate_body("postSalesInvoices", body)] == ["idempotency_id"]


def test_validate_body_merges_resource_length_limits():
    ok = {"contact": {"name": "A", "contact_type_ids": ["CUSTOMER"], "reference": "TENCHARSXX"}}
    assert validate_body("postContacts", ok) == []
    ok["contact"]["reference"] += "Y"
    assert [e["$source"] for e in validate_body("postContacts", ok)] == ["reference"]
    long_ref = {"sales_credit_note": {"contact_id": "c", "date": "2026-01-01",
                                      "reference": "x" * 26, "credit_note_lines": []}}
    assert [e["$source"] for e in validate_body("postSalesCreditNotes", long_ref)] == ["reference"]


def test_operations_are_found_from_swagger_paths():
    assert schema.body_definition("postSalesInvoices") == ("invoicing_sales", "postSalesInvoices")
    assert schema.resource_definition("postContactAllocations") == ("payments",
                                                                    "ContactAllocation")
    assert "getBusinesses" in schema.operations()
    with pytest.raises(KeyError):
        schema.body_definition("getSalesInvoices")


def test_every_nested_violation_is_reported():
    bad = {"contact": {"id": 1}, "invoice_lines": [
        {"unit_price": "abc", "ledger_account": {"id": 5}},
        {"quantity": "ten"}]}
    errors = validate_response("SalesInvoice", bad)
    assert {e["$source"] for e in errors} == {
        "contact.id", "invoice_lines.unit_price", "invoice_lines.ledger_account.id",
        "invoice_lines.quantity"}
    assert any("invoice_lines[1].quantity" in e["$message"] for e in errors)
