"""Pure mapping of Odoo customer documents to Sage sales documents.

No Odoo imports: the Odoo side reads its records into plain dicts and calls
these functions, so every rule below (reference truncation, due dates,
numbering mode, line amounts, contact references, matching a document found in
Sage after a lost response, total comparison) is tested without a database in
``tests/test_documents_mapping.py``.

Money is handled as :class:`decimal.Decimal` throughout; the client serialises
Decimals as JSON numbers.
"""

import html
import re
import unicodedata
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser

from .client import make_idempotency_id, to_decimal

__all__ = [
    "CONTACT_NAME_MAX",
    "CONTACT_PERSON_NAME_MAX",
    "CONTACT_REFERENCE_MAX",
    "NOTES_MAX",
    "REFERENCE_MAX",
    "TOTAL_TOLERANCE",
    "allocation_lines",
    "contact_payload",
    "contact_reference",
    "document_number",
    "document_reference",
    "due_date",
    "find_matches",
    "is_duplicate_number_error",
    "is_duplicate_reference_error",
    "line_payload",
    "money",
    "plain_text",
    "sales_document_payload",
    "total_difference",
    "truncate",
    "write_off_payload",
]

# Field limits of Sage's SalesInvoice / SalesCreditNote / Contact definitions.
REFERENCE_MAX = 25
NOTES_MAX = 2000
CONTACT_REFERENCE_MAX = 10
CONTACT_NAME_MAX = 100
# ContactPerson.name is shorter than Contact.name in Sage (swagger.contacts.json).
CONTACT_PERSON_NAME_MAX = 50
LINE_DESCRIPTION_MAX = 2000
# Sage and Odoo may round a total differently by a cent; more is a real mismatch.
TOTAL_TOLERANCE = Decimal("0.01")

CENT = Decimal("0.01")
ELLIPSIS = "\u2026"

INVOICE = "sales_invoice"
CREDIT_NOTE = "sales_credit_note"

LINES_KEY = {INVOICE: "invoice_lines", CREDIT_NOTE: "credit_note_lines"}
NUMBER_KEY = {INVOICE: "invoice_number", CREDIT_NOTE: "credit_note_number"}


def money(value):
    """Round to cents, half away from zero (what Sage and Odoo both do)."""
    return to_decimal(value, default=Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)


# ----------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------
_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol"}


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _BLOCK_TAGS and tag != "br":
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(data)


_TAG_RE = re.compile(r"</?[A-Za-z][^<>]*>")


def plain_text(value, limit=None):
    """Text of ``value`` with HTML markup removed, entities decoded and blank
    runs collapsed (line breaks kept), cut to ``limit`` characters.

    Plain text that merely contains ``<`` (``"a < b"``) is left alone: only
    strings that contain something shaped like a tag are parsed as HTML.
    """
    if not value:
        return ""
    text = str(value)
    if _TAG_RE.search(text):
        parser = _TextExtractor()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    else:
        text = html.unescape(text) if "&" in text else text
    lines = [" ".join(line.split()) for line in text.replace("\r", "\n").split("\n")]
    out = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    text = "\n".join(out).strip()
    return truncate(text, limit) if limit else text


def truncate(text, limit):
    """``text`` cut to ``limit`` characters, ending with an ellipsis when cut."""
    text = text or ""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def document_reference(customer_reference, odoo_number, limit=REFERENCE_MAX):
    """Sage ``reference`` (max 25): the customer's/PO reference, else Odoo's number.

    A longer reference is truncated, not refused: the start of a PO number is
    what people search for, so it is kept and an ellipsis marks the cut.
    """
    reference = plain_text(customer_reference) or plain_text(odoo_number)
    reference = " ".join(reference.split())
    return truncate(reference, limit)


def document_number(odoo_number, prefix=None, suffix=None):
    """Sage number when Odoo numbers the document: prefix + Odoo name + suffix."""
    return f"{prefix or ''}{odoo_number}{suffix or ''}"


def due_date(invoice_date, invoice_date_due=None, has_payment_terms=False, default_due_days=30):
    """Due date sent to Sage.

    With payment terms Odoo has computed the due date: send it. Without, the
    connection's default number of days after the invoice date applies. Never
    before the invoice date (Sage refuses that).
    """
    if isinstance(invoice_date, str):
        invoice_date = date.fromisoformat(invoice_date)
    if isinstance(invoice_date_due, str):
        invoice_date_due = date.fromisoformat(invoice_date_due)
    if has_payment_terms and invoice_date_due:
        due = invoice_date_due
    else:
        due = invoice_date + timedelta(days=max(0, int(default_due_days or 0)))
    return max(due, invoice_date)


# ----------------------------------------------------------------------------
# Contacts
# ----------------------------------------------------------------------------
def _ascii_letters(name):
    normalized = unicodedata.normalize("NFKD", name or "")
    return "".join(ch for ch in normalized if ch.isascii() and ch.isalpha()).upper()


def contact_reference(name, partner_key, variant=0, limit=CONTACT_REFERENCE_MAX):
    """A unique Sage contact reference (max 10 characters) for an Odoo partner.

    Letters of the name followed by the partner's id: the letters part holds no
    digit, so two partners never get the same reference. ``variant`` > 0 gives
    a different, still deterministic reference, for when the first one is
    already used in Sage by a contact that is not this customer.
    """
    key = str(partner_key)
    if variant:
        # Hex digest of the key and the variant: still derived from the partner.
        digest = make_idempotency_id("contact-reference", partner_key, variant)
        return ("X" + digest[: limit - 1]).upper()
    letters = _ascii_letters(name) or "C"
    room = limit - len(key)
    if room < 1:
        return key[-limit:]
    return letters[:room] + key


def contact_payload(partner, reference):
    """Sage ``contact`` body for a new CUSTOMER.

    ``partner``: dict with ``name``, ``email``, optional ``street``, ``street2``,
    ``city``, ``zip``, ``state``, ``country_code``, ``vat``, ``phone``, ``mobile``.
    """
    name = plain_text(partner.get("name")) or partner.get("email") or "?"
    name = truncate(name, CONTACT_NAME_MAX)
    body = {
        "name": name,
        "contact_type_ids": ["CUSTOMER"],
        "reference": reference,
    }
    if partner.get("vat"):
        body["tax_number"] = partner["vat"]
    address = {
        "address_type_id": "ACCOUNTS",
        "address_line_1": partner.get("street") or None,
        "address_line_2": partner.get("street2") or None,
        "city": partner.get("city") or None,
        "postal_code": partner.get("zip") or None,
        "region": partner.get("state") or None,
        "country_id": (partner.get("country_code") or "").upper() or None,
    }
    address = {key: value for key, value in address.items() if value}
    if len(address) > 1:
        address["is_main_address"] = True
        body["main_address"] = address
    person = {
        "name": truncate(plain_text(partner.get("person_name")) or name, CONTACT_PERSON_NAME_MAX),
        "email": partner.get("email"),
        "is_main_contact": True,
        "contact_person_type_ids": ["ACCOUNTS"],
    }
    if partner.get("phone"):
        person["telephone"] = partner["phone"]
    if partner.get("mobile"):
        person["mobile"] = partner["mobile"]
    body["main_contact_person"] = person
    return body


# ----------------------------------------------------------------------------
# Documents
# ----------------------------------------------------------------------------
def line_payload(line):
    """One Sage invoice/credit-note line from an Odoo product line.

    ``line``: ``description``, ``quantity``, ``price_unit``, ``price_subtotal``
    (net, rounded by Odoo), ``price_total`` (gross), ``tax_amount`` (Odoo's own
    tax of the line), ``price_include`` (the unit price includes the tax),
    ``ledger_id``, ``tax_rate_id``.

    Sage computes ``net = round(quantity * unit_price - discount)``; the
    discount is sent as an amount chosen so that Sage lands exactly on Odoo's
    rounded line amount (a percentage would be rounded twice).
    """
    quantity = to_decimal(line["quantity"])
    unit_price = to_decimal(line["price_unit"])
    tax_amount = money(line.get("tax_amount") or 0)
    price_include = bool(line.get("price_include"))
    target = money(line["price_total"] if price_include else line["price_subtotal"])
    gross = money(quantity * unit_price)
    body = {
        "description": truncate(plain_text(line.get("description")) or "-", LINE_DESCRIPTION_MAX),
        "ledger_account_id": line["ledger_id"],
        "quantity": quantity,
        "unit_price": unit_price,
        "tax_rate_id": line["tax_rate_id"],
        "tax_amount": tax_amount,
    }
    if price_include:
        body["unit_price_includes_tax"] = True
    if gross != target:
        body["discount_amount"] = gross - target
    return body


def sales_document_payload(doc):
    """Body of a Sage ``sales_invoice`` or ``sales_credit_note`` (without namespace).

    ``doc`` keys: ``resource`` (``"sales_invoice"`` or ``"sales_credit_note"``),
    ``contact_id``, ``date``, ``due_date`` (invoices), ``reference``, ``notes``,
    ``currency`` and ``business_currency`` (ISO codes), ``exchange_rate``
    (units of ``currency`` per unit of business currency), ``numbering_mode``
    (``"sage"`` or ``"odoo"``), ``number`` (sent only in ``"odoo"`` mode),
    ``original_invoice_date`` (credit notes), ``lines`` (see :func:`line_payload`).
    """
    resource = doc["resource"]
    if resource not in LINES_KEY:
        raise ValueError(f"unknown Sage document type {resource!r}")
    body = {
        "contact_id": doc["contact_id"],
        "date": _iso(doc["date"]),
        "reference": truncate(doc.get("reference") or "", REFERENCE_MAX) or None,
        LINES_KEY[resource]: [line_payload(line) for line in doc["lines"]],
    }
    if resource == INVOICE and doc.get("due_date"):
        body["due_date"] = _iso(doc["due_date"])
    if resource == CREDIT_NOTE and doc.get("original_invoice_date"):
        body["original_invoice_date"] = _iso(doc["original_invoice_date"])
    notes = plain_text(doc.get("notes"), NOTES_MAX)
    if notes:
        body["notes"] = notes
    currency = (doc.get("currency") or "").upper()
    business_currency = (doc.get("business_currency") or "").upper()
    if currency and business_currency and currency != business_currency:
        body["currency_id"] = currency
        body["exchange_rate"] = to_decimal(doc["exchange_rate"]).quantize(Decimal("0.000001"))
    if doc.get("numbering_mode") == "odoo":
        body[NUMBER_KEY[resource]] = doc["number"]
    if body["reference"] is None:
        del body["reference"]
    return body


def write_off_payload(
    *,
    contact_id,
    amount,
    date,
    ledger_id,
    tax_rate_id,
    invoice_number,
    currency=None,
    exchange_rate=None,
    business_currency=None,
    reference=None,
):
    """Sage credit note writing off ``amount`` of an invoice as a bad debt.

    No VAT relief: the gross outstanding amount is the net of a single line on
    the Bad Debts ledger with a no-tax rate, so the credit note's total equals
    the amount allocated to the invoice.
    """
    amount = money(amount)
    if amount <= 0:
        raise ValueError("a write-off needs a positive amount")
    doc = {
        "resource": CREDIT_NOTE,
        "contact_id": contact_id,
        "date": date,
        "reference": reference or document_reference(None, f"WO {invoice_number}"),
        "notes": f"Bad debt write-off of {invoice_number}",
        "currency": currency,
        "business_currency": business_currency,
        "exchange_rate": exchange_rate,
        "lines": [
            {
                "description": f"Bad debt write-off of {invoice_number}",
                "quantity": 1,
                "price_unit": amount,
                "price_subtotal": amount,
                "price_total": amount,
                "tax_amount": 0,
                "ledger_id": ledger_id,
                "tax_rate_id": tax_rate_id,
            }
        ],
    }
    return sales_document_payload(doc)


def allocation_lines(invoice_id, credit_note_id, amount):
    """Artefacts of a customer allocation of a credit note to an invoice.

    Sage's sign convention: the invoice positive, the credit note negative.
    """
    amount = money(amount)
    if amount <= 0:
        raise ValueError("an allocation needs a positive amount")
    return [(invoice_id, amount), (credit_note_id, -amount)]


def _iso(value):
    return value if isinstance(value, str) else value.isoformat()


# ----------------------------------------------------------------------------
# After the push
# ----------------------------------------------------------------------------
def total_difference(sage_total, odoo_total):
    """Sage's total minus Odoo's, or None when they agree within a cent."""
    if sage_total is None:
        return None
    difference = money(sage_total) - money(odoo_total)
    return difference if abs(difference) > TOTAL_TOLERANCE else None


def _item_number(item):
    return (
        item.get("invoice_number")
        or item.get("credit_note_number")
        or item.get("displayed_as")
        or ""
    )


def find_matches(items, *, contact_id, date, total, reference=None, number=None):
    """Split Sage documents found by a search into exact and partial matches.

    A document is a candidate when it belongs to our contact, carries our
    number (Odoo numbering) or our reference, and is not void. It matches
    exactly when its date and total (within a cent) are ours as well; other
    candidates are partial matches, for a person to judge. Returns ``(exact, partial)``,
    lists of ``{"id", "number", "reference", "date", "total", "contact_id"}``.
    """
    exact, partial = [], []
    wanted_date = _iso(date) if date else None
    for item in items or []:
        status = (item.get("status") or {}).get("id")
        if status == "VOID" or item.get("deleted_at"):
            continue
        item_number = _item_number(item)
        same_number = bool(number) and item_number == number
        same_reference = bool(reference) and (item.get("reference") or "") == reference
        if not (same_number or same_reference):
            continue
        item_contact = (item.get("contact") or {}).get("id")
        if item_contact != contact_id:
            continue  # another customer's document is never ours
        item_total = to_decimal(item.get("total_amount"), default=None)
        candidate = {
            "id": item.get("id"),
            "number": item_number,
            "reference": item.get("reference") or "",
            "date": item.get("date"),
            "total": item_total,
            "contact_id": item_contact,
        }
        if (
            item.get("date") == wanted_date
            and item_total is not None
            and total_difference(item_total, total) is None
        ):
            exact.append(candidate)
        else:
            partial.append(candidate)
    return exact, partial


def _errors_about(error, field_names, words):
    for detail in getattr(error, "errors", None) or []:
        source = (detail.source or "").split(".")[-1]
        message = (detail.message or "").lower()
        if source in field_names and any(word in message for word in words):
            return True
    return False


def is_duplicate_number_error(error):
    """Whether a 422 says the invoice/credit-note number is already used."""
    return _errors_about(
        error, ("invoice_number", "credit_note_number"), ("taken", "already", "duplicate", "unique")
    )


def is_duplicate_reference_error(error):
    """Whether a 422 on a contact says its reference is already used."""
    return _errors_about(error, ("reference",), ("taken", "already", "duplicate", "unique"))
