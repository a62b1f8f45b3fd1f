"""Pure tests (no Odoo) for sage_api.payments: Sage items -> payment status updates."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api.payments import (
    DEFAULT_OVERLAP,
    DOCUMENT_PULL_ATTRIBUTES,
    allocated_artefact_ids,
    amount_to_register,
    merge_status_updates,
    parse_sage_datetime,
    pull_since,
    status_update,
)


def invoice(
    sage_id="inv1",
    status="UNPAID",
    outstanding="120.0",
    total_paid="0.0",
    last_paid=None,
    updated_at="2026-03-01T10:00:00Z",
    **extra,
):
    item = {
        "id": sage_id,
        "displayed_as": "SI-1",
        "$path": f"/sales_invoices/{sage_id}",
        "status": {"id": status, "displayed_as": status.title()} if status else None,
        "outstanding_amount": outstanding,
        "total_paid": total_paid,
        "last_paid": last_paid,
        "updated_at": updated_at,
    }
    item.update(extra)
    return item


# ---------------------------------------------------------------- status_update


def test_unpaid_invoice():
    update = status_update(invoice())
    assert update == {
        "sage_id": "inv1",
        "sage_payment_status": "unpaid",
        "sage_outstanding_amount": Decimal("120.0"),
        "sage_last_paid_date": None,
        "voided": False,
        "void_reason": None,
        "total_paid": Decimal("0.0"),
        "updated_at": datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc),
    }


def test_part_paid_invoice_keeps_amounts_as_decimals():
    update = status_update(
        invoice(status="PART_PAID", outstanding="70.1", total_paid="49.9", last_paid="2026-02-27")
    )
    assert update["sage_payment_status"] == "part_paid"
    assert update["sage_outstanding_amount"] == Decimal("70.1")
    assert isinstance(update["sage_outstanding_amount"], Decimal)
    assert update["total_paid"] == Decimal("49.9")
    assert update["sage_last_paid_date"] == date(2026, 2, 27)
    assert update["voided"] is False


def test_paid_invoice():
    update = status_update(
        invoice(status="PAID", outstanding="0.0", total_paid="120.0", last_paid="2026-03-01")
    )
    assert update["sage_payment_status"] == "paid"
    assert update["sage_outstanding_amount"] == 0


def test_void_invoice_owes_nothing_and_keeps_its_reason():
    update = status_update(
        invoice(status="VOID", outstanding="120.0", void_reason="Raised in error")
    )
    assert update["sage_payment_status"] == "void"
    assert update["voided"] is True
    assert update["void_reason"] == "Raised in error"
    assert update["sage_outstanding_amount"] == 0


def test_deleted_document_reads_as_void():
    update = status_update(invoice(deleted_at="2026-03-02T08:00:00Z"))
    assert update["voided"] is True
    assert update["sage_payment_status"] == "void"


def test_void_reason_ignored_unless_void():
    assert status_update(invoice(void_reason="stale"))["void_reason"] is None


@pytest.mark.parametrize("status", ["DRAFT", "PRO_FORMA"])
def test_documents_without_payment_meaning_are_skipped(status):
    assert status_update(invoice(status=status)) is None


@pytest.mark.parametrize(
    ("outstanding", "total_paid", "expected"),
    [("120.0", "0.0", "unpaid"), ("20.0", "100.0", "part_paid"), ("0.0", "120.0", "paid")],
)
def test_other_statuses_are_derived_from_amounts(outstanding, total_paid, expected):
    item = invoice(status="DISPUTED", outstanding=outstanding, total_paid=total_paid)
    assert status_update(item)["sage_payment_status"] == expected


def test_unknown_status_without_amounts_is_skipped():
    assert status_update(invoice(status="DISPUTED", outstanding=None)) is None
    assert status_update(invoice(status=None, outstanding=None)) is None


def test_lowercase_status_is_accepted():
    assert status_update(invoice(status="paid", outstanding="0"))["sage_payment_status"] == "paid"


def test_missing_id_is_an_error():
    with pytest.raises(ValueError):
        status_update(invoice(sage_id=None))


def test_timestamps_with_offsets_are_normalised_to_utc():
    update = status_update(invoice(updated_at="2026-03-01T12:00:00+02:00"))
    assert update["updated_at"] == datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert parse_sage_datetime(None) is None


def test_pull_attributes_are_limited():
    assert "all" not in DOCUMENT_PULL_ATTRIBUTES
    for needed in ("status", "outstanding_amount", "last_paid", "void_reason", "updated_at"):
        assert needed in DOCUMENT_PULL_ATTRIBUTES


# ---------------------------------------------------------------- merge / dedupe


def test_merge_keeps_the_newest_version_of_a_document():
    older = invoice(status="UNPAID", updated_at="2026-03-01T10:00:00Z")
    newer = invoice(status="PAID", outstanding="0", updated_at="2026-03-01T10:05:00Z")
    assert merge_status_updates([newer], [older])["inv1"]["sage_payment_status"] == "paid"
    assert merge_status_updates([older], [newer])["inv1"]["sage_payment_status"] == "paid"


def test_merge_on_equal_time_takes_the_later_read():
    first = invoice(status="PART_PAID", outstanding="20", total_paid="100")
    again = invoice(status="PAID", outstanding="0", total_paid="120")
    assert merge_status_updates([first, again])["inv1"]["sage_payment_status"] == "paid"


def test_merge_without_timestamp_takes_the_later_read():
    first = invoice(status="UNPAID", updated_at="2026-03-01T10:00:00Z")
    reread = invoice(status="PAID", outstanding="0", updated_at=None)
    assert merge_status_updates([first], [reread])["inv1"]["sage_payment_status"] == "paid"


def test_merge_spans_documents_and_drops_unusable_items():
    merged = merge_status_updates(
        [invoice("a"), invoice("b", status="DRAFT")],
        [invoice("c", status="VOID")],
    )
    assert sorted(merged) == ["a", "c"]


def test_merge_accepts_ready_updates():
    ready = status_update(invoice("a", status="PAID", outstanding="0"))
    assert merge_status_updates([ready])["a"] is ready


# ---------------------------------------------------------------- payments feed


def test_allocated_artefact_ids_from_payments_and_allocations():
    payments = [
        {
            "id": "pay1",
            "allocated_artefacts": [
                {"id": "x1", "artefact": {"id": "inv1"}, "amount": "10.0"},
                {"id": "x2", "artefact": {"id": "inv2"}, "amount": "5.0"},
            ],
        },
        {"id": "pay2", "allocated_artefacts": []},
        {"id": "pay3"},
    ]
    allocations = [
        {
            "id": "al1",
            "allocated_artefacts": [
                {"artefact": {"id": "inv2"}, "amount": "3.0"},
                {"artefact_id": "cn1", "amount": "-3.0"},
                {"artefact": {}, "amount": "0"},
            ],
        }
    ]
    assert allocated_artefact_ids(payments + allocations) == {"inv1", "inv2", "cn1"}


# ---------------------------------------------------------------- watermark


def test_pull_since_subtracts_the_overlap_from_the_watermark():
    watermark = datetime(2026, 3, 1, 10, 0)
    assert pull_since(watermark, datetime(2020, 1, 1)) == watermark - DEFAULT_OVERLAP
    assert DEFAULT_OVERLAP == timedelta(minutes=5)


def test_first_pull_starts_from_the_given_start():
    connected = datetime(2026, 1, 1, 9, 0)
    assert pull_since(None, connected, overlap=timedelta(minutes=2)) == datetime(2026, 1, 1, 8, 58)


def test_pull_since_rejects_bad_input():
    with pytest.raises(ValueError):
        pull_since(None, None)
    with pytest.raises(ValueError):
        pull_since(datetime(2026, 1, 1), None, overlap=timedelta(minutes=-1))


def test_pull_since_keeps_timezone_awareness():
    aware = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert pull_since(aware, None).tzinfo is timezone.utc


# ---------------------------------------------------------------- payment registration


@pytest.mark.parametrize(
    ("total_paid", "mirrored", "residual", "outstanding", "expected"),
    [
        # first part payment of 40 on a 100 invoice
        ("40", "0", "100", "60", "40"),
        # then the rest
        ("100", "40", "60", "0", "60"),
        # nothing new in Sage: nothing registered, whatever Odoo owes
        ("40", "40", "100", "60", "0"),
        # Odoo already knows part of it (a payment recorded in Odoo by hand)
        ("100", "0", "30", "0", "30"),
        # Odoo already fully paid: nothing
        ("100", "0", "0", "0", "0"),
        # Sage total went down (payment deleted in Sage): never negative
        ("20", "40", "80", "80", "0"),
    ],
)
def test_amount_to_register(total_paid, mirrored, residual, outstanding, expected):
    assert amount_to_register(total_paid, mirrored, residual, outstanding) == Decimal(expected)


def test_amount_to_register_accepts_floats_and_none():
    assert amount_to_register(50.5, None, 100.0, 49.5) == Decimal("50.5")
