"""Pure tests (no Odoo) for sage_api.push_batch.ConcurrentSender against the sandbox:
concurrency, result order, exactly once, and a token refused mid-chunk."""

import time
from decimal import Decimal

import pytest

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import documents, make_idempotency_id
from sage_api.push import ERROR, SENT, PreparedPush
from sage_api.push_batch import ConcurrentSender, PrefetchedContactSearches


@pytest.fixture
def business_id(sage_user):
    return sage_user["business_ids"][0]


@pytest.fixture
def contact_id(api):
    return api.create_customer("Batch Test Ltd", reference="BATCH1")["id"]


@pytest.fixture
def ledger(api):
    return api.ledger_id(4000)


def job(contact_id, ledger, move_id):
    reference = f"INV/2026/{move_id:05d}"
    doc = {
        "resource": documents.INVOICE,
        "contact_id": contact_id,
        "date": "2026-01-15",
        "due_date": "2026-02-14",
        "reference": reference,
        "currency": "GBP",
        "business_currency": "GBP",
        "numbering_mode": "sage",
        "lines": [
            {
                "description": f"Work {move_id}",
                "quantity": 1,
                "price_unit": 100,
                "price_subtotal": 100,
                "price_total": 120,
                "tax_amount": 20,
                "ledger_id": ledger,
                "tax_rate_id": "GB_STANDARD",
            }
        ],
    }
    return PreparedPush(
        move_id=move_id,
        operation="send",
        resource=documents.INVOICE,
        payload=documents.sales_document_payload(doc),
        idempotency_id=make_idempotency_id("db", "account.move", move_id, "send", 0),
        contact_id=contact_id,
        date="2026-01-15",
        total=Decimal("120.00"),
        reference=reference,
    )


def stored(sandbox, business_id):
    with sandbox.lock:
        return list(sandbox.state.collection("sales_invoices", business_id))


def sender(sandbox, tokens, business_id, max_workers):
    return ConcurrentSender(
        sandbox.api_url,
        access_token=tokens["access_token"],
        business_id=business_id,
        max_workers=max_workers,
        sleep=lambda _seconds: None,
    )


def test_sends_concurrently_and_returns_results_in_job_order(
    sandbox, tokens, business_id, contact_id, ledger
):
    jobs = [job(contact_id, ledger, move_id) for move_id in range(1, 21)]
    sandbox.set_faults(latency=0.1)
    sandbox.reset_stats()
    with sender(sandbox, tokens, business_id, max_workers=10) as batch_sender:
        started = time.monotonic()
        results, refused = batch_sender.send(jobs)
        elapsed = time.monotonic() - started
    assert refused == set()
    assert [result.move_id for result in results] == list(range(1, 21))
    assert {result.status for result in results} == {SENT}
    assert sandbox.stats()["max_in_flight"] > 1
    # 20 requests of 0.1 s each: serially at least 2 s.
    assert elapsed < 1.5
    by_reference = {record["reference"]: record["id"] for record in stored(sandbox, business_id)}
    assert len(by_reference) == 20
    for result, sent_job in zip(results, jobs):
        assert by_reference[sent_job.reference] == result.sage_id


def test_one_worker_sends_serially(sandbox, tokens, business_id, contact_id, ledger):
    jobs = [job(contact_id, ledger, move_id) for move_id in range(1, 4)]
    with sender(sandbox, tokens, business_id, max_workers=1) as batch_sender:
        results, _refused = batch_sender.send(jobs)
    assert [result.status for result in results] == [SENT, SENT, SENT]
    assert sandbox.stats()["max_in_flight"] == 1


def test_token_refused_mid_chunk_is_reported_then_resent_once(
    sandbox, app, tokens, business_id, contact_id, ledger
):
    jobs = [job(contact_id, ledger, move_id) for move_id in range(1, 7)]
    with sender(sandbox, tokens, business_id, max_workers=3) as batch_sender:
        results, refused = batch_sender.send(jobs[:2])
        assert {result.status for result in results} == {SENT}
        sandbox.expire_access_tokens()
        results, refused = batch_sender.send(jobs[2:])
        # The threads never refresh the token: each job fails fast and is reported.
        assert refused == {3, 4, 5, 6}
        assert {result.status for result in results} == {ERROR}
        assert not any(result.definitive for result in results)
        assert len(stored(sandbox, business_id)) == 2
        # The caller renews the token (in Odoo: in its own thread) and sends them again.
        batch_sender.renew_token(sandbox.issue_tokens(app["client_id"])["access_token"])
        results, refused = batch_sender.send(jobs[2:])
    assert refused == set()
    assert {result.status for result in results} == {SENT}
    assert sorted(record["reference"] for record in stored(sandbox, business_id)) == sorted(
        sent_job.reference for sent_job in jobs
    )


def test_an_unexpected_error_is_a_result_not_an_exception(
    sandbox, tokens, business_id, contact_id, ledger, monkeypatch
):
    from sage_api import push_batch

    real_send = push_batch.send_document

    def send_or_explode(client, prepared):
        if prepared.move_id == 2:
            raise RuntimeError("boom")
        return real_send(client, prepared)

    monkeypatch.setattr(push_batch, "send_document", send_or_explode)
    jobs = [job(contact_id, ledger, move_id) for move_id in (1, 2, 3)]
    with sender(sandbox, tokens, business_id, max_workers=3) as batch_sender:
        results, _refused = batch_sender.send(jobs)
    assert [result.status for result in results] == [SENT, ERROR, SENT]
    assert "boom" in results[1].error
    # Not definitive: the next attempt keeps the idempotency id and looks first.
    assert not results[1].definitive


def test_chunks_submitted_together_share_the_worker_limit(
    sandbox, tokens, business_id, contact_id, ledger
):
    first = [job(contact_id, ledger, move_id) for move_id in range(1, 9)]
    second = [job(contact_id, ledger, move_id) for move_id in range(9, 17)]
    sandbox.set_faults(latency=0.05)
    sandbox.reset_stats()
    with sender(sandbox, tokens, business_id, max_workers=4) as batch_sender:
        handles = [batch_sender.submit(first), batch_sender.submit(second)]
        outcomes = [handle.wait() for handle in handles]
    assert sandbox.stats()["max_in_flight"] <= 4
    for handle, (results, refused) in zip(handles, outcomes):
        assert refused == set()
        assert [result.move_id for result in results] == [j.move_id for j in handle.jobs]
        assert {result.status for result in results} == {SENT}
    assert len(stored(sandbox, business_id)) == 16


def test_prefetched_contact_searches_are_used_once_then_asked_again(
    sandbox, tokens, business_id, api
):
    api.create_customer(
        "Known Ltd", main_contact_person={"name": "AP", "email": "known@customer.example"}
    )
    with sender(sandbox, tokens, business_id, max_workers=4) as batch_sender:
        find = batch_sender.client.find_contacts_by_email
        emails = ["known@customer.example", "new@customer.example"]
        sandbox.reset_stats()
        searches = batch_sender.prefetch({email: (find, (email,)) for email in emails})
        assert sandbox.stats()["by_route"] == {"GET /contacts": 2}
        client = PrefetchedContactSearches(batch_sender.client, searches)
        assert [c["name"] for c in client.find_contacts_by_email(emails[0])] == ["Known Ltd"]
        assert client.find_contacts_by_email(emails[1]) == []
        assert sandbox.stats()["by_route"] == {"GET /contacts": 2}, "answered from the prefetch"
        client.find_contacts_by_email(emails[0])  # asked again: a real call
        assert sandbox.stats()["by_route"] == {"GET /contacts": 3}
        assert client.business_id == business_id  # everything else is the real client
