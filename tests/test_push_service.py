"""Pure tests (no Odoo) for sage_api.push.send_document against the local sandbox:
exactly once through lost answers, 5xx and 429; allocation; conflicts."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import SageClient, documents, make_idempotency_id
from sage_api.push import (
    CONFLICT,
    ERROR,
    SENT,
    UNCERTAIN,
    AllocationPlan,
    PreparedPush,
    send_document,
)


@pytest.fixture
def business_id(sage_user):
    return sage_user["business_ids"][0]


@pytest.fixture
def client(sandbox, tokens, business_id):
    with SageClient(
        sandbox.api_url,
        access_token=tokens["access_token"],
        business_id=business_id,
        sleep=lambda _seconds: None,
    ) as sage_client:
        yield sage_client


@pytest.fixture
def contact_id(api):
    return api.create_customer("Push Test Ltd", reference="PUSH1")["id"]


@pytest.fixture
def ledger(api):
    return api.ledger_id(4000)


def prepared(
    contact_id,
    ledger,
    move_id=1,
    reference="INV/2026/00001",
    resource=None,
    number=None,
    allocation=None,
    verify_first=False,
    key="k",
):
    resource = resource or documents.INVOICE
    doc = {
        "resource": resource,
        "contact_id": contact_id,
        "date": "2026-01-15",
        "due_date": "2026-02-14",
        "reference": reference,
        "currency": "GBP",
        "business_currency": "GBP",
        "numbering_mode": "odoo" if number else "sage",
        "number": number,
        "lines": [
            {
                "description": "Consulting day",
                "quantity": 2,
                "price_unit": 150,
                "price_subtotal": 300,
                "price_total": 360,
                "tax_amount": 60,
                "ledger_id": ledger,
                "tax_rate_id": "GB_STANDARD",
            }
        ],
    }
    return PreparedPush(
        move_id=move_id,
        operation="send",
        resource=resource,
        payload=documents.sales_document_payload(doc),
        idempotency_id=make_idempotency_id("db", "account.move", move_id, "send", key),
        contact_id=contact_id,
        date="2026-01-15",
        total=Decimal("360.00"),
        reference=reference,
        number=number,
        verify_first=verify_first,
        allocation=allocation,
    )


def stored(sandbox, business_id, reference, kind="sales_invoices"):
    return [r for r in sandbox.state.collection(kind, business_id) if r["reference"] == reference]


def test_created(sandbox, client, contact_id, ledger, business_id):
    result = send_document(client, prepared(contact_id, ledger))
    assert result.status == SENT
    assert result.how == "created"
    assert result.number == "SI-1"
    assert result.total == Decimal("360.0")
    assert result.status_id == "UNPAID"
    assert [r["id"] for r in stored(sandbox, business_id, "INV/2026/00001")] == [result.sage_id]


def test_drop_after_save_is_found_by_search(sandbox, client, contact_id, ledger, business_id):
    sandbox.fail_next(1, "drop_after_save", path_contains="POST /sales_invoices")
    result = send_document(client, prepared(contact_id, ledger))
    assert (result.status, result.how) == (SENT, "found")
    assert len(stored(sandbox, business_id, "INV/2026/00001")) == 1
    assert sandbox.stats()["idempotent_replays"] == 0


def test_drop_after_save_with_search_down_is_replayed(
    sandbox, client, contact_id, ledger, business_id
):
    sandbox.fail_next(1, "drop_after_save", path_contains="POST /sales_invoices")
    sandbox.fail_next(10, 503, path_contains="GET /sales_invoices")
    result = send_document(client, prepared(contact_id, ledger))
    assert (result.status, result.how) == (SENT, "replayed")
    assert len(stored(sandbox, business_id, "INV/2026/00001")) == 1
    assert sandbox.stats()["idempotent_replays"] == 1


def test_5xx_before_saving_is_posted_again_once(sandbox, client, contact_id, ledger, business_id):
    sandbox.fail_next(3, 500, path_contains="POST /sales_invoices")
    result = send_document(client, prepared(contact_id, ledger))
    assert result.status == SENT
    assert len(stored(sandbox, business_id, "INV/2026/00001")) == 1


def test_429_is_waited_for(sandbox, client, contact_id, ledger, business_id):
    sandbox.fail_next(3, 429, path_contains="POST /sales_invoices")
    result = send_document(client, prepared(contact_id, ledger))
    assert (result.status, result.how) == (SENT, "created")
    assert len(stored(sandbox, business_id, "INV/2026/00001")) == 1


def test_everything_down_is_uncertain_and_keeps_the_id(
    sandbox, client, contact_id, ledger, business_id
):
    sandbox.fail_next(1, "drop_after_save", path_contains="POST /sales_invoices")
    sandbox.fail_next(50, 503, path_contains="sales_invoices")
    job = prepared(contact_id, ledger)
    result = send_document(client, job)
    assert result.status == UNCERTAIN
    assert not result.definitive
    sandbox._fail_queue = []
    # Next attempt: same idempotency id, looks first, links the saved document.
    retry = send_document(client, prepared(contact_id, ledger, verify_first=True))
    assert (retry.status, retry.how) == (SENT, "found")
    assert len(stored(sandbox, business_id, "INV/2026/00001")) == 1


def test_several_exact_matches_are_uncertain(sandbox, client, contact_id, ledger):
    send_document(client, prepared(contact_id, ledger, move_id=1, key="a"))
    send_document(client, prepared(contact_id, ledger, move_id=2, key="b"))
    result = send_document(client, prepared(contact_id, ledger, move_id=3, verify_first=True))
    assert result.status == UNCERTAIN
    assert len(result.candidates) == 2


def test_validation_error_is_definitive(client, contact_id):
    result = send_document(client, prepared(contact_id, "no-such-ledger"))
    assert result.status == ERROR
    assert result.definitive


def test_duplicate_number_is_a_conflict(client, contact_id, ledger):
    first = send_document(client, prepared(contact_id, ledger, number="OD-1", key="a"))
    assert first.number == "OD-1"
    second = send_document(client, prepared(contact_id, ledger, move_id=2, number="OD-1"))
    assert second.status == CONFLICT
    assert second.definitive


def test_credit_note_allocated_to_invoice(sandbox, client, contact_id, ledger, business_id):
    invoice = send_document(client, prepared(contact_id, ledger))
    credit = prepared(
        contact_id,
        ledger,
        move_id=2,
        reference="RINV/2026/00001",
        resource=documents.CREDIT_NOTE,
        allocation=AllocationPlan(
            contact_id=contact_id,
            invoice_id=invoice.sage_id,
            date="2026-01-15",
            idempotency_id=make_idempotency_id("alloc", 2),
        ),
    )
    sandbox.fail_next(1, "drop_after_save", path_contains="POST /contact_allocations")
    result = send_document(client, credit)
    assert result.status == SENT
    assert result.allocation_amount == Decimal("360.00")
    assert len(sandbox.state.collection("contact_allocations", business_id)) == 1
    assert sandbox.state.sales_invoices[invoice.sage_id]["outstanding_amount"] == 0


def test_allocation_failure_keeps_the_credit_note(sandbox, client, contact_id, ledger):
    invoice = send_document(client, prepared(contact_id, ledger))
    sandbox.record_payment(invoice.sage_id, "360.00")
    credit = prepared(
        contact_id,
        ledger,
        move_id=2,
        reference="RINV/1",
        resource=documents.CREDIT_NOTE,
        allocation=AllocationPlan(contact_id, invoice.sage_id, "2026-01-15", "a" * 32),
    )
    result = send_document(client, credit)
    assert result.status == SENT
    assert result.allocation_skipped == "the invoice has nothing outstanding in Sage"
    assert result.allocation_id is None


def test_parallel_sends_with_faults_create_each_document_once(
    sandbox, client, contact_id, ledger, business_id
):
    sandbox.set_faults(rate_429=0.1, rate_5xx=0.1, drop_after_save=0.3, retry_after=0)
    jobs = [
        prepared(contact_id, ledger, move_id=n, reference=f"INV/P/{n:03d}", key=n)
        for n in range(1, 21)
    ]
    pending = jobs
    for _round in range(6):
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda job: send_document(client, job), pending))
        pending = [
            prepared(
                contact_id,
                ledger,
                move_id=job.move_id,
                reference=job.reference,
                key=job.move_id,
                verify_first=True,
            )
            for job, result in zip(pending, results)
            if result.status != SENT
        ]
        if not pending:
            break
    sandbox.set_faults()
    assert not pending
    for n in range(1, 21):
        assert len(stored(sandbox, business_id, f"INV/P/{n:03d}")) == 1
