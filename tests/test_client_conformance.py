"""Conformance (pure, no sandbox needed): every request body SageClient builds
is validated against Sage's own Swagger 2.0 definitions.

The bodies are captured on the wire (as JSON text, after serialisation) and
checked strictly: on top of Sage's schema, unknown properties are rejected
(Sage's definitions do not say ``additionalProperties: false``, so without it
a misspelt key would pass). ``idempotency_id`` is allowed inside the
namespace object only: Sage documents it in its idempotency guide, not in the
Swagger files.
"""

import copy
import json
import os
import re
from datetime import date
from decimal import Decimal

import jsonschema
import pytest
import responses

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import SageClient, make_idempotency_id

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC_DIRS = [
    # Sage's Swagger files as shipped beside the project, else the sandbox's copy.
    os.path.join(
        os.path.dirname(ROOT), "shared", "reference", "sage-accounting-v3.1-openapi-modules"
    ),
    os.path.join(ROOT, "sage_sandbox", "swagger"),
]
API = "https://api.sage.test/v3.1"
IDEM = make_idempotency_id("db", "account.move", 42, 0)


def _spec_dir():
    for path in SPEC_DIRS:
        if os.path.isfile(os.path.join(path, "swagger.invoicing_sales.json")):
            return path
    return None


def _load(name):
    with open(os.path.join(_spec_dir(), name), encoding="utf-8") as handle:
        text = handle.read()
    # swagger.settings.json has trailing commas; harmless to strip everywhere
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))


pytestmark = pytest.mark.skipif(_spec_dir() is None, reason="Sage Swagger files not available")


def _strict(node):
    """Copy of a Swagger schema where objects with properties reject unknown keys."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date", raises=ValueError)
def _is_date(value):
    if isinstance(value, str):
        date.fromisoformat(value)
    return True


def validate(module, operation_id, body):
    spec = _load(module)
    definition = None
    for methods in spec["paths"].values():
        for op in methods.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                for param in op.get("parameters", []):
                    if param.get("in") == "body":
                        definition = param["schema"]["$ref"].rsplit("/", 1)[1]
    assert definition, f"{operation_id} not found in {module}"
    definitions = _strict(copy.deepcopy(spec["definitions"]))
    namespace = next(iter(definitions[definition]["properties"]))
    inner = definitions[definition]["properties"][namespace]
    inner["properties"]["idempotency_id"] = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    validator = jsonschema.Draft4Validator(schema, format_checker=_FORMATS)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    return ["/".join(map(str, e.path)) + ": " + e.message for e in errors]


@pytest.fixture
def wire():
    """Sage mocked: every write answers 201; yields the list of sent bodies."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for method in (responses.POST, responses.PUT):
            rsps.add(method, re.compile(re.escape(API) + r"/.*"), status=201, json={"id": "x"})
        rsps.add(responses.DELETE, re.compile(re.escape(API) + r"/.*"), json={"id": "x"})

        def bodies():
            return [json.loads(c.request.body) for c in rsps.calls if c.request.body]

        yield bodies


@pytest.fixture
def client():
    return SageClient(API, access_token="t", business_id="b", sleep=lambda s: None)


INVOICE = {
    "contact_id": "99d52ca7060341a698a664d1737663c5",
    "date": date(2026, 1, 15),
    "due_date": date(2026, 2, 14),
    "reference": "ODOO INV/2026/00042",
    "notes": "Thank you for your business.",
    "terms_and_conditions": "Payment within 30 days.",
    "currency_id": "GBP",
    "main_address": {
        "address_line_1": "1 High Street",
        "city": "London",
        "postal_code": "EC1A 1AA",
        "country_id": "GB",
    },
    "invoice_lines": [
        {
            "description": "Consulting, January",
            "ledger_account_id": "9a994ff6267a11e797950a57719b2edb",
            "quantity": Decimal("10"),
            "unit_price": Decimal("100.00"),
            "discount_amount": Decimal("0.00"),
            "tax_rate_id": "GB_STANDARD",
            "tax_amount": Decimal("200.00"),
        },
        {
            "description": "Licence (product)",
            "ledger_account_id": "9a994ff6267a11e797950a57719b2edb",
            "product_id": "d81d133b98164ec8a6fc47a756ada18a",
            "quantity": 1,
            "unit_price": Decimal("50.5"),
            "tax_rate_id": "GB_ZERO",
            "tax_amount": Decimal("0"),
        },
    ],
}

CREDIT_NOTE = {
    "contact_id": "99d52ca7060341a698a664d1737663c5",
    "date": date(2026, 6, 30),
    "reference": "WO INV/2026/00042",
    "notes": "Bad debt write-off of SI-42",
    "original_invoice_date": date(2026, 1, 15),
    "credit_note_lines": [
        {
            "description": "Bad debt write-off SI-42",
            "ledger_account_id": "bad0debt0000000000000000000008100",
            "quantity": 1,
            "unit_price": Decimal("208.33"),
            "tax_rate_id": "GB_STANDARD",
            "tax_amount": Decimal("41.67"),
        }
    ],
}

CONTACT = {
    "name": "Acme Ltd",
    "contact_type_ids": ["CUSTOMER"],
    "reference": "ACME001",
    "source_guid": "odoo-res.partner-1234",
    "tax_number": "GB123456789",
    "currency_id": "GBP",
    "main_address": {
        "address_line_1": "1 High Street",
        "city": "London",
        "postal_code": "EC1A 1AA",
        "country_id": "GB",
    },
    "main_contact_person": {
        "name": "Accounts Payable",
        "email": "ap@acme.example",
        "is_main_contact": True,
    },
}


def test_sales_invoice_body_conforms(client, wire):
    client.create_sales_invoice(INVOICE, IDEM)
    (body,) = wire()
    assert validate("swagger.invoicing_sales.json", "postSalesInvoices", body) == []


def test_sales_credit_note_body_conforms(client, wire):
    client.create_sales_credit_note(CREDIT_NOTE, IDEM)
    (body,) = wire()
    assert validate("swagger.invoicing_sales.json", "postSalesCreditNotes", body) == []


def test_contact_body_conforms(client, wire):
    client.create_contact(CONTACT, IDEM)
    (body,) = wire()
    assert validate("swagger.contacts.json", "postContacts", body) == []


def test_contact_allocation_body_conforms(client, wire):
    client.create_contact_allocation(
        "99d52ca7060341a698a664d1737663c5",
        [("inv-id", Decimal("250.00")), ("cn-id", Decimal("-250.00"))],
        date(2026, 3, 31),
        IDEM,
    )
    (body,) = wire()
    assert validate("swagger.payments.json", "postContactAllocations", body) == []


def test_put_sales_invoice_body_conforms(client, wire):
    client.put("/sales_invoices/abc", "sales_invoice", {"notes": "Updated", "reference": "R1"})
    (body,) = wire()
    assert validate("swagger.invoicing_sales.json", "putSalesInvoicesKey", body) == []


def test_validator_catches_mistakes():
    """The conformance check itself must be able to fail."""
    bad_key = {"sales_invoice": {"contact_id": "c", "date": "2026-01-01", "invoice_line": []}}
    assert validate("swagger.invoicing_sales.json", "postSalesInvoices", bad_key)
    missing = {"sales_invoice": {"contact_id": "c", "date": "2026-01-01"}}
    assert validate("swagger.invoicing_sales.json", "postSalesInvoices", missing)
    bad_types = {
        "contact_allocation": {
            "transaction_type_id": "CUSTOMER_ALLOCATION",
            "contact_id": "c",
            "date": "31/03/2026",
            "allocated_artefacts": [{"artefact_id": "i", "amount": "250.00"}],
        }
    }
    errors = validate("swagger.payments.json", "postContactAllocations", bad_types)
    assert any("amount" in e for e in errors) and any("date" in e for e in errors)
    not_namespaced = {"contact_id": "c", "date": "2026-01-01", "invoice_lines": []}
    assert validate("swagger.invoicing_sales.json", "postSalesInvoices", not_namespaced)
    bad_idem = {"contact": {"name": "A", "contact_type_ids": ["CUSTOMER"], "idempotency_id": "x"}}
    assert validate("swagger.contacts.json", "postContacts", bad_idem)
