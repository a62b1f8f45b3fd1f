"""Sending one prepared document to Sage, exactly once (pure Python, HTTP only).

This is the middle step of a push::

    jobs = moves._sage_prepare_push()          # Odoo, main thread: checks, contact,
                                               # payload, idempotency id, commit
    results = [send_document(client, job) for job in jobs]   # HTTP only
    for result in results:
        moves.browse(result.move_id)._sage_apply_push_result(result)   # Odoo

:func:`send_document` touches no database and no shared state: it only uses
the :class:`~.client.SageClient` it is given (which is thread-safe), so a batch
runner may call it from several threads at once for different documents.
It never raises for Sage or network errors; every outcome is a
:class:`PushResult`.

Exactly once: the document carries a deterministic ``idempotency_id`` chosen
(and committed) before the call. The first POST is sent without the client's
automatic retry of writes; when it fails in a way that may have reached Sage
(timeout, connection dropped, 5xx), Sage is searched first for a document with
our reference or number, contact, date and total. One exact match is linked.
Several are reported as *uncertain* for a person to choose. None: the same POST
is replayed with the same idempotency id, which Sage answers with the record
created by the first attempt if there was one, so nothing is ever created twice.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from . import documents
from .client import to_decimal
from .exceptions import (
    SageAuthError,
    SageConnectionError,
    SageError,
    SageRateLimitError,
    SageReauthorizationRequired,
    SageServerError,
    SageValidationError,
)

__all__ = [
    "CONFLICT",
    "ERROR",
    "SENT",
    "UNCERTAIN",
    "AllocationPlan",
    "PreparedPush",
    "PushResult",
    "send_document",
]

SENT = "sent"
UNCERTAIN = "uncertain"
ERROR = "error"
CONFLICT = "conflict"

_PATHS = {
    documents.INVOICE: "/sales_invoices",
    documents.CREDIT_NOTE: "/sales_credit_notes",
}


@dataclass(frozen=True)
class AllocationPlan:
    """Allocate the pushed credit note to an invoice already in Sage.

    ``amount`` None means "as much as both documents allow" (a credit note
    reversing an invoice that may have been part-paid meanwhile).
    """

    contact_id: str
    invoice_id: str
    date: str
    idempotency_id: str
    amount: Decimal = None


@dataclass(frozen=True)
class PreparedPush:
    """Everything :func:`send_document` needs; built by ``_sage_prepare_push``.

    ``operation``: ``"send"`` (the move itself) or ``"write_off"`` (a bad-debt
    credit note for the move). ``resource``: ``documents.INVOICE`` or
    ``documents.CREDIT_NOTE``. ``payload``: the body without namespace nor
    idempotency id. ``total``: Odoo's total of the document, to find it again
    and to compare with Sage's. ``verify_first``: an earlier attempt may have
    reached Sage, so look before posting. ``existing_id``/``existing_number``:
    the document is already in Sage and only the allocation is left.
    """

    move_id: int
    operation: str
    resource: str
    payload: dict
    idempotency_id: str
    contact_id: str
    date: str
    total: Decimal
    reference: str = None
    number: str = None
    verify_first: bool = False
    existing_id: str = None
    existing_number: str = None
    allocation: AllocationPlan = None


@dataclass
class PushResult:
    """Outcome of :func:`send_document` for one document.

    ``status``: SENT, UNCERTAIN (may be in Sage; ``candidates`` lists what was
    found), ERROR or CONFLICT (Sage refused our number). ``how``: ``created``,
    ``replayed`` (Sage returned the record of an earlier attempt), ``found``
    (linked by searching Sage) or ``existing``. ``definitive``: Sage processed
    and refused the request, so nothing was created and a new idempotency id
    may be used next time; otherwise the next attempt must reuse it.
    ``reauthorize``: the Sage connection must be renewed.
    """

    move_id: int
    operation: str
    status: str
    how: str = None
    sage_id: str = None
    number: str = None
    total: Decimal = None
    status_id: str = None
    outstanding: Decimal = None
    candidates: list = field(default_factory=list)
    error: str = None
    error_fields: dict = field(default_factory=dict)
    definitive: bool = False
    reauthorize: bool = False
    allocation_id: str = None
    allocation_amount: Decimal = None
    allocation_error: str = None
    allocation_skipped: str = None

    @property
    def sent(self):
        return self.status == SENT


def send_document(client, prepared):
    """Create ``prepared`` in Sage (once) and allocate it; return a PushResult."""
    try:
        result = _create(client, prepared)
        if result.sent and prepared.allocation:
            _allocate(client, prepared, result)
    except SageError as error:  # anything the steps above did not classify
        result = _failure(prepared, ERROR, error)
    return result


# ----------------------------------------------------------------------------
# Creating the document
# ----------------------------------------------------------------------------
def _create(client, prepared):
    if prepared.existing_id:
        return PushResult(
            prepared.move_id,
            prepared.operation,
            SENT,
            how="existing",
            sage_id=prepared.existing_id,
            number=prepared.existing_number,
            total=prepared.total,
        )
    if prepared.verify_first:
        exact, partial, _lookup_error = _lookup(client, prepared)
        if len(exact) == 1:
            return _found(prepared, exact[0])
        if len(exact) > 1:
            return _uncertain(
                prepared,
                exact,
                "Several documents in Sage match this one; choose the right one.",
            )
    namespace = prepared.resource
    body = {namespace: dict(prepared.payload, idempotency_id=prepared.idempotency_id)}
    try:
        # No automatic retry of the write: on a lost answer, look first.
        record = client.request("POST", _PATHS[namespace], body=body, retry_writes=False)
    except SageValidationError as error:
        if documents.is_duplicate_number_error(error):
            return _failure(prepared, CONFLICT, error, definitive=True)
        return _failure(prepared, ERROR, error, definitive=True)
    except (SageServerError, SageConnectionError) as error:
        if not error.maybe_sent:
            return _failure(prepared, ERROR, error)
        return _recover(client, prepared, error)
    except SageRateLimitError as error:
        return _failure(prepared, ERROR, error)
    except SageAuthError as error:
        reauthorize = isinstance(error, SageReauthorizationRequired)
        return _failure(prepared, ERROR, error, reauthorize=reauthorize)
    except SageError as error:
        return _failure(prepared, ERROR, error, definitive=_refused(error))
    return _record_result(prepared, record, "created")


def _recover(client, prepared, first_error):
    """The POST may have been applied: find the document, else replay it."""
    exact, partial, lookup_error = _lookup(client, prepared)
    if len(exact) == 1:
        return _found(prepared, exact[0])
    if len(exact) > 1:
        return _uncertain(
            prepared, exact, "Several documents in Sage match this one; choose the right one."
        )
    try:
        # Same idempotency id: Sage returns the first attempt's record if it exists.
        record = client.post(
            _PATHS[prepared.resource],
            prepared.resource,
            prepared.payload,
            idempotency_id=prepared.idempotency_id,
        )
    except SageValidationError as error:
        if documents.is_duplicate_number_error(error):
            # Our number exists although the search did not match it: a person
            # must look (it may be this document with different values).
            return _uncertain(prepared, partial, str(error))
        return _failure(prepared, ERROR, error)
    except SageError as error:
        message = str(lookup_error or error)
        return _uncertain(prepared, partial, f"{first_error} / {message}")
    return _record_result(prepared, record, "replayed")


def _lookup(client, prepared):
    """Search Sage for this document: (exact, partial, error)."""
    search = (
        client.search_sales_invoices
        if prepared.resource == documents.INVOICE
        else client.search_sales_credit_notes
    )
    terms = [term for term in (prepared.number, prepared.reference) if term]
    items, seen, error = [], set(), None
    for term in terms:
        try:
            found = search(term)
        except SageError as exc:
            error = exc
            continue
        for item in found:
            if item.get("id") not in seen:
                seen.add(item.get("id"))
                items.append(item)
    exact, partial = documents.find_matches(
        items,
        contact_id=prepared.contact_id,
        date=prepared.date,
        total=prepared.total,
        reference=prepared.reference,
        number=prepared.number,
    )
    return exact, partial, error


def _found(prepared, candidate):
    return PushResult(
        prepared.move_id,
        prepared.operation,
        SENT,
        how="found",
        sage_id=candidate["id"],
        number=candidate["number"],
        total=candidate["total"],
        candidates=[candidate],
    )


def _uncertain(prepared, candidates, message):
    return PushResult(
        prepared.move_id,
        prepared.operation,
        UNCERTAIN,
        candidates=list(candidates),
        error=message,
    )


def _record_result(prepared, record, how):
    record = record or {}
    number = (
        record.get(documents.NUMBER_KEY[prepared.resource]) or record.get("displayed_as") or None
    )
    return PushResult(
        prepared.move_id,
        prepared.operation,
        SENT,
        how=how,
        sage_id=record.get("id"),
        number=number,
        total=to_decimal(record.get("total_amount"), default=None),
        status_id=(record.get("status") or {}).get("id"),
        outstanding=to_decimal(record.get("outstanding_amount"), default=None),
    )


def _failure(prepared, status, error, definitive=False, reauthorize=False):
    return PushResult(
        prepared.move_id,
        prepared.operation,
        status,
        error=str(error),
        error_fields=dict(getattr(error, "fields", None) or {}),
        definitive=definitive,
        reauthorize=reauthorize,
    )


def _refused(error):
    """Sage answered and refused (4xx other than 429): nothing was created."""
    status = getattr(error, "status", None)
    return bool(status) and 400 <= status < 500 and status not in (401, 408, 429)


# ----------------------------------------------------------------------------
# Allocating a credit note
# ----------------------------------------------------------------------------
def _allocate(client, prepared, result):
    plan = prepared.allocation
    try:
        amount = plan.amount
        if amount is None:
            invoice = client.get_sales_invoice(
                plan.invoice_id, attributes=("status", "outstanding_amount")
            )
            if (invoice.get("status") or {}).get("id") == "VOID":
                result.allocation_skipped = "the invoice is void in Sage"
                return
            outstanding = to_decimal(invoice.get("outstanding_amount"), default=Decimal(0))
            credit = result.total if result.total is not None else prepared.total
            amount = min(documents.money(credit), documents.money(outstanding))
        if amount <= 0:
            result.allocation_skipped = "the invoice has nothing outstanding in Sage"
            return
        allocation = client.create_contact_allocation(
            plan.contact_id,
            documents.allocation_lines(plan.invoice_id, result.sage_id, amount),
            plan.date,
            plan.idempotency_id,
        )
    except SageError as error:
        result.allocation_error = str(error)
        return
    result.allocation_id = (allocation or {}).get("id")
    result.allocation_amount = documents.money(amount)
