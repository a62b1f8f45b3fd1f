"""Pure rules of the payment pull: Sage documents, payments and allocations
become per-document status updates.

No Odoo imports (tested in tests/test_payments_mapping.py). The Odoo side
(models/sage_connection_pull.py, models/account_move_payment.py) only reads
the feeds, matches ``sage_id`` and writes what these functions return.

Why four feeds: Sage does not document whether recording a receipt or an
allocation bumps the invoice's own ``updated_at`` (the project sandbox does).
Reading ``contact_payments`` and ``contact_allocations`` changed since the
watermark costs one call each per 200 changes and tells which documents were
paid even if their ``updated_at`` did not move; only those documents are then
re-read one by one, and only when the documents feed did not already carry
them.
"""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from .client import to_decimal

# Sage's clocks and ours differ, and a change committed in Sage while a pull
# is paging may carry a time just before the pull started: every pull re-reads
# this much before the watermark. Items seen twice are merged by id.
DEFAULT_OVERLAP = timedelta(minutes=5)

# Sage artefact status id -> `account.move.sage_payment_status`.
SAGE_STATUS_TO_PAYMENT_STATUS = {
    "UNPAID": "unpaid",
    "PART_PAID": "part_paid",
    "PAID": "paid",
    "VOID": "void",
}
# Documents in these states carry no payment information to mirror (a pushed
# document is never a draft; a pro-forma is not an invoice).
IGNORED_SAGE_STATUSES = frozenset({"DRAFT", "PRO_FORMA"})
# Statuses set by people in Odoo (or by the write-off in Sage, which the
# sender records as written_off): the pull never overwrites them.
PROTECTED_PAYMENT_STATUSES = frozenset({"written_off", "paid_written_off"})

# `attributes=` of the feeds: only what a status update needs.
DOCUMENT_PULL_ATTRIBUTES = (
    "status",
    "outstanding_amount",
    "total_paid",
    "last_paid",
    "void_reason",
    "updated_at",
)
ALLOCATION_PULL_ATTRIBUTES = ("allocated_artefacts", "updated_at")

ZERO = Decimal(0)


def parse_sage_datetime(value):
    """Sage timestamp (``2026-01-15T10:02:11Z`` or with an offset) -> aware UTC datetime."""
    if not value:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_sage_date(value):
    """Sage date (``2026-01-15``) -> date; None stays None."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def status_update(item):
    """The payment status of one Sage sales invoice or credit note.

    Returns ``None`` when the item says nothing we can mirror (draft,
    pro-forma, no status and no amounts), else a dict::

        {"sage_id", "sage_payment_status", "sage_outstanding_amount" (Decimal or
         None when Sage did not send it), "sage_last_paid_date" (date or None),
         "voided" (bool), "void_reason", "total_paid" (Decimal),
         "updated_at" (aware datetime or None)}

    Statuses Sage may add or that we do not mirror (``DISPUTED``,
    ``DECLINED``, ...) are derived from the amounts, so a disputed invoice
    with a part payment still reads part-paid.
    """
    sage_id = item.get("id")
    if not sage_id:
        raise ValueError("a Sage document without an id cannot be matched")
    status_id = str((item.get("status") or {}).get("id") or "").upper()
    outstanding = to_decimal(item.get("outstanding_amount"))
    total_paid = to_decimal(item.get("total_paid"), default=ZERO)
    voided = status_id == "VOID" or bool(item.get("deleted_at"))
    if voided:
        payment_status = "void"
        # A void document owes nothing, whatever amount Sage still shows.
        outstanding = ZERO
    elif status_id in SAGE_STATUS_TO_PAYMENT_STATUS:
        payment_status = SAGE_STATUS_TO_PAYMENT_STATUS[status_id]
    elif status_id in IGNORED_SAGE_STATUSES or outstanding is None:
        return None
    elif outstanding <= 0:
        payment_status = "paid"
    elif total_paid > 0:
        payment_status = "part_paid"
    else:
        payment_status = "unpaid"
    return {
        "sage_id": sage_id,
        "sage_payment_status": payment_status,
        "sage_outstanding_amount": outstanding,
        "sage_last_paid_date": parse_sage_date(item.get("last_paid")),
        "voided": voided,
        "void_reason": (item.get("void_reason") or None) if voided else None,
        "total_paid": total_paid,
        "updated_at": parse_sage_datetime(item.get("updated_at")),
    }


def merge_status_updates(*feeds):
    """One update per document across feeds and overlapping pages.

    Each argument is an iterable of Sage items (or of ``status_update``
    results). When a document appears more than once (the overlap window, a
    page boundary, the invoice feed and a re-read), the newest ``updated_at``
    wins; on a tie or without timestamps the later one wins, as it was read
    later. Items without a usable status are dropped.
    """
    merged = {}
    for feed in feeds:
        for item in feed:
            update = item if "sage_payment_status" in item else status_update(item)
            if update is None:
                continue
            previous = merged.get(update["sage_id"])
            if previous is None or not _is_older(update, previous):
                merged[update["sage_id"]] = update
    return merged


def _is_older(update, other):
    mine, theirs = update["updated_at"], other["updated_at"]
    return mine is not None and theirs is not None and mine < theirs


def allocated_artefact_ids(items):
    """Ids of the documents a batch of contact payments/allocations touched."""
    ids = set()
    for item in items:
        for allocated in item.get("allocated_artefacts") or ():
            artefact = allocated.get("artefact") or {}
            artefact_id = artefact.get("id") or allocated.get("artefact_id")
            if artefact_id:
                ids.add(artefact_id)
    return ids


def pull_since(watermark, first_pull_since, overlap=DEFAULT_OVERLAP):
    """The ``updated_or_created_since`` of a pull.

    ``watermark``: start of the last successful pull (None before the first);
    ``first_pull_since``: where the very first pull starts (e.g. when the
    connection was made, so nothing pushed since then is missed). Datetimes
    are naive UTC (Odoo) or aware; the result has the same kind.
    """
    if overlap < timedelta(0):
        raise ValueError("the overlap window cannot be negative")
    start = watermark or first_pull_since
    if start is None:
        raise ValueError("a pull needs a watermark or a first-pull start")
    return start - overlap


def amount_to_register(sage_total_paid, already_mirrored, odoo_residual, sage_outstanding):
    """Amount of a new Odoo payment that mirrors Sage, never counted twice.

    ``already_mirrored``: Sage's paid total at the last registration (each
    Sage amount is considered once: if someone later unreconciles the Odoo
    payment, it is not registered again). The new Sage amount is capped by
    what Odoo still owes above Sage's outstanding amount, so payments or
    credit notes already reconciled in Odoo are not paid a second time.
    Returns a Decimal >= 0.
    """
    new_in_sage = to_decimal(sage_total_paid, default=ZERO) - to_decimal(
        already_mirrored, default=ZERO
    )
    owed_above_sage = to_decimal(odoo_residual, default=ZERO) - to_decimal(
        sage_outstanding, default=ZERO
    )
    return max(ZERO, min(new_in_sage, owed_above_sage))
