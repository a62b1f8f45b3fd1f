"""In-memory store and business rules of the Sage sandbox.

Records are kept as plain dicts shaped like Sage's resources; money is held as
``Decimal`` and timestamps as aware ``datetime`` objects, and keys starting with ``_``
are private (business id, sequence number...).  :func:`render` turns a record into its
wire form (money as numeric strings such as ``"1250.0"``, timestamps as
``2026-01-15T10:02:11Z``, private keys dropped).

The store is not thread-safe by itself: :class:`sage_sandbox.server.SageSandbox` holds one
lock around every call into it.
"""
from __future__ import annotations

import datetime as dt
import random
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0")

NOT_PAYABLE = "You can only pay unpaid or part-paid invoices."
ZERO_TYPE_TAX_SUFFIXES = ("_ZERO", "_EXEMPT", "_NO_TAX")

SUBSCRIPTION_NAMES = {
    "ACCOUNTING": "Accounting Plus",
    "ACCOUNTS": "Accounting Standard",
    "ACCOUNTING_10": "Accounting Standard",
    "START": "Accounting Start",
    "MICRO": "Accounting Start",
}
START_SUBSCRIPTIONS = {"START", "MICRO"}

COUNTRY_NAMES = {"GB": "United Kingdom (GB)", "IE": "Ireland (IE)", "CA": "Canada (CA)"}
BASE_CURRENCY = {"GB": "GBP", "IE": "EUR", "CA": "CAD"}

CURRENCIES = [
    ("GBP", "Pound Sterling (GBP)"),
    ("EUR", "Euro (EUR)"),
    ("USD", "US Dollar (USD)"),
    ("CAD", "Canadian Dollar (CAD)"),
]

CONTACT_TYPES = [("CUSTOMER", "Customer"), ("VENDOR", "Supplier")]

ARTEFACT_STATUSES = [
    ("DRAFT", "Draft"), ("UNPAID", "Unpaid"), ("PART_PAID", "Part Paid"), ("PAID", "Paid"),
    ("VOID", "Void"), ("DISPUTED", "Disputed"), ("DECLINED", "Declined"),
    ("PRO_FORMA", "Pro-Forma"),
]

PAYMENT_METHODS = [
    ("BANK_TRANSFER", "Bank Transfer"), ("CASH", "Cash"), ("CHEQUE", "Cheque"),
    ("CREDIT_DEBIT", "Credit/Debit Card"), ("ALTERNATIVE_PAYMENT", "Alternative Payment"),
]

TRANSACTION_TYPE_NAMES = {
    "SALES_INVOICE": "Sales Invoice",
    "SALES_CREDIT_NOTE": "Sales Credit Note",
    "CUSTOMER_RECEIPT": "Customer Receipt",
    "CUSTOMER_ALLOCATION": "Customer Allocation",
}

# (id suffix, name, percentage) per country
TAX_RATES = {
    "GB": [("STANDARD", "Standard", "20.0"), ("REDUCED", "Reduced", "5.0"),
           ("ZERO", "Zero", "0.0"), ("EXEMPT", "Exempt", "0.0"), ("NO_TAX", "No Tax", "0.0")],
    "IE": [("STANDARD", "Standard", "23.0"), ("REDUCED", "Reduced", "13.5"),
           ("ZERO", "Zero", "0.0"), ("EXEMPT", "Exempt", "0.0"), ("NO_TAX", "No Tax", "0.0")],
    "CA": [("GST", "GST", "5.0"), ("ZERO", "Zero", "0.0"), ("EXEMPT", "Exempt", "0.0"),
           ("NO_TAX", "No Tax", "0.0")],
}

# nominal, name, type, visible scopes, default tax suffix, control account
UK_CHART = [
    (1100, "Trade Debtors", "CURRENT_ASSETS", ["reporting"], None, True),
    (1200, "Current", "CURRENT_ASSETS", ["banking", "journals", "reporting"], "NO_TAX", False),
    (2200, "Sales Tax Control Account", "CURRENT_LIABILITY", ["reporting"], None, True),
    (3200, "Retained Earnings", "EQUITY", ["journals", "reporting"], "NO_TAX", False),
    (4000, "Sales Type A", "SALES", ["sales", "other_receipts", "journals", "reporting"],
     "STANDARD", False),
    (4010, "Sales Type B", "SALES", ["sales", "other_receipts", "journals", "reporting"],
     "STANDARD", False),
    (4900, "Other Income", "OTHER_INCOME", ["sales", "other_receipts", "journals", "reporting"],
     "STANDARD", False),
    (5000, "Cost of sales - goods", "DIRECT_EXPENSES",
     ["expenses", "other_payments", "journals", "reporting"], "STANDARD", False),
    (7500, "Office costs", "OVERHEADS", ["expenses", "other_payments", "journals", "reporting"],
     "STANDARD", False),
    (8100, "Bad Debts", "OVERHEADS", ["sales", "expenses", "journals", "reporting"],
     "NO_TAX", False),
]

LEDGER_TYPE_NAMES = {
    "CURRENT_ASSETS": "Current Assets", "CURRENT_LIABILITY": "Current Liability",
    "EQUITY": "Equity", "SALES": "Sales", "OTHER_INCOME": "Other Income",
    "DIRECT_EXPENSES": "Direct Expenses", "OVERHEADS": "Overheads",
}

ARTEFACT_KINDS = {
    "sales_invoices": {
        "namespace": "sales_invoice", "lines": "invoice_lines", "number": "invoice_number",
        "prefix_field": "invoice_number_prefix", "prefix_setting": "sales_invoice_number_prefix",
        "counter": "next_invoice_number", "transaction_type": "SALES_INVOICE",
        "operation": "postSalesInvoices", "definition": "SalesInvoice",
    },
    "sales_credit_notes": {
        "namespace": "sales_credit_note", "lines": "credit_note_lines",
        "number": "credit_note_number", "prefix_field": "credit_note_number_prefix",
        "prefix_setting": "sales_credit_note_number_prefix", "counter": "next_credit_note_number",
        "transaction_type": "SALES_CREDIT_NOTE", "operation": "postSalesCreditNotes",
        "definition": "SalesCreditNote",
    },
}


class SageError(Exception):
    """An API error rendered as Sage's error array."""

    def __init__(self, status: int, errors: list[dict] | str, data_code: str = "RecordInvalid",
                 source: str = "", headers: dict | None = None):
        if isinstance(errors, str):
            errors = [error_item(errors, data_code, source)]
        super().__init__(f"{status} {errors}")
        self.status = status
        self.errors = errors
        self.headers = headers or {}


def error_item(message: str, data_code: str = "RecordInvalid", source: str = "") -> dict:
    return {"$severity": "error", "$dataCode": data_code, "$message": message, "$source": source}


def invalid(source: str, message: str) -> SageError:
    return SageError(422, message, "RecordInvalid", source)


def not_found(source: str = "", message: str = "Couldn't find record.") -> SageError:
    return SageError(404, message, "RecordNotFound", source)


# --------------------------------------------------------------------------- value helpers

def money(value: Any) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def to_decimal(value: Any, source: str) -> Decimal:
    if isinstance(value, bool):
        raise invalid(source, "is not a number")
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise invalid(source, "is not a number") from None
    if not d.is_finite():
        raise invalid(source, "is not a number")
    return d


def format_decimal(value: Decimal) -> str:
    """Sage style numeric string: 1250 -> "1250.0", 12.5 -> "12.5", 0.1 -> "0.1"."""
    if value == 0:
        return "0.0"
    text = format(value.normalize(), "f")
    if "." not in text:
        text += ".0"
    return text


def format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_since(value: str, source: str) -> dt.datetime:
    """Parse Sage's ``updated_or_created_since`` formats.

    Accepts date-times, dates and Sage's ``YYYY-MM-DDT(+|-)hh:mm`` date-only form.
    """
    text = value.strip().replace(" ", "+")  # an unencoded '+' arrives as a space
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        if "T" in text:
            date_part, time_part = text.split("T", 1)
            if time_part[:1] in "+-":  # YYYY-MM-DDT+hh:mm
                text = f"{date_part}T00:00:00{time_part}"
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise invalid(source, "is not a valid date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed


def parse_date(value: Any, source: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise invalid(source, "is not a valid date") from None


def render(value: Any) -> Any:
    """Wire form of a record: Decimals as strings, datetimes as ISO, private keys dropped."""
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [render(v) for v in value]
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def link(kind: str, rec_id: str, displayed_as: str) -> dict:
    return {"id": rec_id, "displayed_as": displayed_as, "$path": f"/{kind}/{rec_id}"}


def base_of(rec: dict) -> dict:
    return {"id": rec["id"], "displayed_as": rec["displayed_as"], "$path": rec["$path"]}


def status_link(status_id: str) -> dict:
    names = dict(ARTEFACT_STATUSES)
    return link("artefact_statuses", status_id, names.get(status_id, status_id))


def ttype_link(type_id: str) -> dict:
    return link("transaction_types", type_id, TRANSACTION_TYPE_NAMES.get(type_id, type_id))


# --------------------------------------------------------------------------- the store

class State:
    """Everything the sandbox knows.  Inspect freely in tests (under ``sb.lock`` if racing).

    Global collections are dicts keyed by id; business-scoped records carry
    ``_business_id``.  ``State.collection(name, business_id)`` lists one business's records.
    """

    COLLECTIONS = ("contacts", "sales_invoices", "sales_credit_notes", "contact_allocations",
                   "contact_payments", "transactions", "ledger_accounts", "bank_accounts")

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self.clock_offset = dt.timedelta(0)
        self.apps: dict[str, dict] = {}
        self.users: dict[str, dict] = {}
        self.businesses: dict[str, dict] = {}
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.idempotency: dict[tuple, tuple[int, Any]] = {}
        self.contacts: dict[str, dict] = {}
        self.sales_invoices: dict[str, dict] = {}
        self.sales_credit_notes: dict[str, dict] = {}
        self.contact_allocations: dict[str, dict] = {}
        self.contact_payments: dict[str, dict] = {}
        self.transactions: dict[str, dict] = {}
        self.ledger_accounts: dict[str, dict] = {}
        self.bank_accounts: dict[str, dict] = {}
        self._seq = 0

    # ---------------------------------------------------------------- basics
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + self.clock_offset

    def today(self) -> dt.date:
        return self.now().date()

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def collection(self, name: str, business_id: str) -> list[dict]:
        return [r for r in getattr(self, name).values() if r.get("_business_id") == business_id]

    def get(self, name: str, business_id: str, rec_id: str, source: str = "") -> dict:
        rec = getattr(self, name).get(rec_id)
        if rec is None or rec.get("_business_id") != business_id or rec.get("deleted_at"):
            raise not_found(source)
        return rec

    def touch(self, rec: dict) -> None:
        rec["updated_at"] = self.now()

    def _stamp(self, rec: dict, business_id: str | None) -> dict:
        now = self.now()
        rec.setdefault("created_at", now)
        rec.setdefault("updated_at", now)
        rec["_seq"] = self.next_seq()
        if business_id:
            rec["_business_id"] = business_id
        return rec

    # ---------------------------------------------------------------- apps, users, businesses
    def register_app(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> dict:
        app = {"client_id": client_id, "client_secret": client_secret,
               "redirect_uris": list(redirect_uris)}
        self.apps[client_id] = app
        return app

    def add_user(self, email: str, first_name: str = "Demo", last_name: str = "User",
                 businesses: list[dict] | None = None, locale: str = "en-GB",
                 user_id: str | None = None) -> dict:
        uid = user_id or self.new_id()
        if uid in self.users:
            raise ValueError(f"user {uid} already exists")
        user = self._stamp({
            "id": uid, "displayed_as": f"{first_name} {last_name}".strip(),
            "$path": "/user", "first_name": first_name, "last_name": last_name,
            "initials": (first_name[:1] + last_name[:1]).upper(), "email": email,
            "locale": locale, "_business_ids": [],
        }, None)
        self.users[uid] = user
        if businesses is None:
            businesses = [{"name": f"{first_name}'s Business"}]
        for spec in businesses:
            self.add_business(uid, **spec)
        return user

    def add_business(self, user_id: str, name: str, country: str = "GB",
                     subscription: str = "ACCOUNTING", active: bool = True,
                     product_family: str = "sbc_accounting", multi_currency: bool = False,
                     business_id: str | None = None, is_demo: bool = False) -> dict:
        user = self.users[user_id]
        country = country.upper()
        bid = business_id or self.new_id()
        now = self.now()
        biz = self._stamp({
            "id": bid, "displayed_as": name, "$path": f"/businesses/{bid}", "name": name,
            "address_line_1": "1 Sandbox Street", "address_line_2": None, "city": "London",
            "postal_code": "EC1A 1AA", "region": None,
            "country": {"id": country, "displayed_as": COUNTRY_NAMES.get(country, country)},
            "telephone": None, "mobile": None, "website": None, "is_demo": is_demo,
            "ni_based": False,
            "subscriptions": [{
                "id": subscription,
                "displayed_as": SUBSCRIPTION_NAMES.get(subscription, subscription),
                "active": bool(active), "status": "active" if active else "inactive",
                "created_at": now, "updated_at": now,
            }],
            "_product_family": product_family, "_user_ids": [user_id],
        }, None)
        self.businesses[bid] = biz
        user["_business_ids"].append(bid)
        self._seed_business(biz, country, multi_currency)
        return biz

    def lead_business_id(self, user_id: str) -> str | None:
        ids = [b for b in self.users[user_id]["_business_ids"] if b in self.businesses]
        return ids[0] if ids else None

    def _seed_business(self, biz: dict, country: str, multi_currency: bool) -> None:
        bid = biz["id"]
        now = self.now()
        base_ccy = BASE_CURRENCY.get(country, "GBP")
        ccy_names = dict(CURRENCIES)
        rates = {}
        for suffix, name, pct in TAX_RATES.get(country, TAX_RATES["GB"]):
            rid = f"{country}_{suffix}"
            percent = Decimal(pct)
            rates[rid] = {
                "id": rid, "displayed_as": f"{name} {percent:.2f}%", "$path": f"/tax_rates/{rid}",
                "created_at": now, "updated_at": now, "name": name, "agency": None,
                "percentage": percent,
                "percentages": [{"percentage": percent, "from_date": "2011-01-04",
                                 "to_date": None}],
                "is_visible": True, "retailer": False, "editable": False, "deletable": False,
                "is_combined_rate": False, "component_tax_rates": [],
            }
        biz["_tax_rates"] = rates
        biz["_currencies"] = {cid: link("currencies", cid, name) for cid, name in CURRENCIES}
        biz["_contact_types"] = {cid: link("contact_types", cid, name)
                                 for cid, name in CONTACT_TYPES}
        ledger_by_nominal = {}
        for nominal, name, ltype, scopes, tax_suffix, control in UK_CHART:
            lid = self.new_id()
            tax = rates.get(f"{country}_{tax_suffix}") if tax_suffix else None
            rec = self._stamp({
                "id": lid, "displayed_as": f"{name} ({nominal})",
                "$path": f"/ledger_accounts/{lid}",
                "ledger_account_group": {"id": ltype, "displayed_as": LEDGER_TYPE_NAMES[ltype]},
                "name": name, "display_name": name, "visible_scopes": list(scopes),
                "included_in_chart": True, "nominal_code": nominal,
                "ledger_account_type": link("ledger_account_types", ltype,
                                            LEDGER_TYPE_NAMES[ltype]),
                "ledger_account_classification": None,
                "tax_rate": base_of(tax) if tax else None, "fixed_tax_rate": False,
                "visible_in_banking": "banking" in scopes,
                "visible_in_expenses": "expenses" in scopes,
                "visible_in_journals": "journals" in scopes,
                "visible_in_other_payments": "other_payments" in scopes,
                "visible_in_other_receipts": "other_receipts" in scopes,
                "visible_in_reporting": "reporting" in scopes,
                "visible_in_sales": "sales" in scopes,
                "is_control_account": control, "control_name": name if control else None,
                "display_formatted": f"{nominal} - {name}",
            }, bid)
            self.ledger_accounts[lid] = rec
            ledger_by_nominal[nominal] = rec
        bank_ledger = ledger_by_nominal[1200]
        bank_id = self.new_id()
        self.bank_accounts[bank_id] = self._stamp({
            "id": bank_id, "displayed_as": "Current (1200)", "$path": f"/bank_accounts/{bank_id}",
            "bank_account_details": {"account_name": "Current", "account_number": "12345678",
                                     "sort_code": "40-00-00", "bic": None, "iban": None},
            "ledger_account": base_of(bank_ledger),
            "bank_account_type": link("bank_account_types", "CHECKING", "Current"),
            "balance": ZERO, "nominal_code": 1200, "editable": True, "deletable": False,
            "default_payment_method": link("payment_methods", "BANK_TRANSFER", "Bank Transfer"),
            "is_active": True, "currency": biz["_currencies"][base_ccy],
        }, bid)
        biz["_default_bank_account_id"] = bank_id
        biz["_financial_settings"] = {
            "$path": "/financial_settings", "year_end_date": f"{now.year}-12-31",
            "year_end_lockdown_date": None, "accounting_type": "accrual",
            "accounts_start_date": f"{now.year}-01-01",
            "base_currency": link("currencies", base_ccy, ccy_names[base_ccy]),
            "multi_currency_enabled": bool(multi_currency), "use_live_exchange_rates": False,
            "mtd_activation_status": "active", "mtd_connected": False,
            "tax_number": "GB123456789" if country == "GB" else "", "general_tax_number": None,
            "sales_tax_calculation": "invoice", "purchase_tax_calculation": "invoice",
            "updated_at": now, "postponed_accounting": False, "destination_vat": False,
        }
        biz["_invoice_settings"] = {
            "$path": "/invoice_settings", "next_invoice_number": 1, "next_credit_note_number": 1,
            "separate_invoice_credit_note_numbering": True,
            "sales_invoice_number_prefix": "SI-", "sales_credit_note_number_prefix": "SCN-",
            "invoice_terms_and_conditions": "Payment within 30 days.",
            "default_note_on_invoice": None, "default_note_on_credit_note": None,
            "customer_credit_days": 30, "vendor_credit_days": 30,
            "footer_details": {"column_1": None, "column_2": None, "column_3": None},
            "updated_at": now,
        }

    # ---------------------------------------------------------------- business lookups
    def business_currency(self, bid: str) -> str:
        return self.businesses[bid]["_financial_settings"]["base_currency"]["id"]

    def tax_rate(self, bid: str, rate_id: str, source: str) -> dict:
        rate = self.businesses[bid]["_tax_rates"].get(rate_id)
        if rate is None:
            raise not_found(source)
        return rate

    def ledger_by_nominal(self, bid: str, nominal: int) -> dict | None:
        for rec in self.collection("ledger_accounts", bid):
            if rec["nominal_code"] == nominal:
                return rec
        return None

    def subscription_id(self, bid: str) -> str:
        subs = self.businesses[bid]["subscriptions"]
        return subs[0]["id"] if subs else ""

    # ---------------------------------------------------------------- contacts
    def create_contact(self, bid: str, data: dict) -> dict:
        name = data["name"]
        type_ids = data.get("contact_type_ids") or []
        if not type_ids:
            raise invalid("contact_type_ids", "can't be blank")
        types = []
        for tid in type_ids:
            ctype = self.businesses[bid]["_contact_types"].get(tid)
            if ctype is None:
                raise not_found("contact_type_ids")
            types.append(dict(ctype))
        reference = data.get("reference")
        if reference:
            for other in self.collection("contacts", bid):
                if (other.get("reference") or "").lower() == reference.lower():
                    raise invalid("reference", "has already been taken")
        cid = self.new_id()
        now = self.now()
        person = None
        mcp = data.get("main_contact_person")
        if mcp:
            pid = self.new_id()
            person = {
                "id": pid, "displayed_as": mcp.get("name") or name,
                "$path": f"/contact_persons/{pid}", "created_at": now, "updated_at": now,
                "deleted_at": None,
                "contact_person_types": [link("contact_person_types", t, t.title()) for t in
                                         (mcp.get("contact_person_type_ids") or ["ACCOUNTS"])],
                "name": mcp.get("name") or name, "job_title": mcp.get("job_title"),
                "telephone": mcp.get("telephone"), "mobile": mcp.get("mobile"),
                "email": mcp.get("email"), "fax": mcp.get("fax"),
                "is_main_contact": True,
                "is_preferred_contact": bool(mcp.get("is_preferred_contact")),
                "address": None,
            }
        currency_id = data.get("currency_id") or self.business_currency(bid)
        currency = self.businesses[bid]["_currencies"].get(currency_id)
        if currency is None:
            raise not_found("currency_id")
        rec = self._stamp({
            "id": cid, "displayed_as": f"{name} ({reference})" if reference else name,
            "$path": f"/contacts/{cid}", "deleted_at": None, "balance": ZERO,
            "contact_types": types, "name": name, "reference": reference,
            "default_sales_ledger_account": None, "default_sales_tax_rate": None,
            "tax_number": data.get("tax_number"), "notes": data.get("notes"),
            "locale": data.get("locale") or "en-GB",
            "main_address": self._address(data.get("main_address"), "ACCOUNTS", cid),
            "delivery_address": self._address(data.get("delivery_address"), "DELIVERY", cid),
            "main_contact_person": person,
            "credit_limit": money(to_decimal(data.get("credit_limit") or 0, "credit_limit")),
            "credit_days": data.get("credit_days"), "source_guid": data.get("source_guid"),
            "currency": dict(currency), "registered_number": data.get("registered_number"),
            "deletable": True, "email": (mcp or {}).get("email"), "gdpr_obfuscated": False,
            "system": False, "is_active": True,
            "tax_treatment": data.get("tax_treatment") or {"home_tax": True},
        }, bid)
        if data.get("default_sales_ledger_account_id"):
            rec["default_sales_ledger_account"] = base_of(self.get(
                "ledger_accounts", bid, data["default_sales_ledger_account_id"],
                "default_sales_ledger_account_id"))
        if data.get("default_sales_tax_rate_id"):
            rec["default_sales_tax_rate"] = base_of(self.tax_rate(
                bid, data["default_sales_tax_rate_id"], "default_sales_tax_rate_id"))
        self.contacts[cid] = rec
        return rec

    def _address(self, data: dict | None, address_type: str, contact_id: str) -> dict | None:
        if not data:
            return None
        aid = self.new_id()
        now = self.now()
        country = data.get("country_id")
        parts = [data.get(k) for k in ("address_line_1", "address_line_2", "city", "postal_code")]
        return {
            "id": aid, "displayed_as": "\n".join(p for p in parts if p),
            "$path": f"/addresses/{aid}", "address_line_1": data.get("address_line_1"),
            "address_line_2": data.get("address_line_2"), "city": data.get("city"),
            "postal_code": data.get("postal_code"), "region": data.get("region"),
            "country": link("countries", country, COUNTRY_NAMES.get(country, country))
            if country else None,
            "address_type": link("address_types", data.get("address_type_id") or address_type,
                                 (data.get("address_type_id") or address_type).title()),
            "contact": {"id": contact_id, "$path": f"/contacts/{contact_id}"},
            "is_main_address": address_type == "ACCOUNTS",
            "created_at": now, "updated_at": now, "deleted_at": None,
        }

    # ---------------------------------------------------------------- sales artefacts
    def create_artefact(self, kind: str, bid: str, data: dict) -> dict:
        meta = ARTEFACT_KINDS[kind]
        biz = self.businesses[bid]
        settings = biz["_invoice_settings"]
        contact = self.contacts.get(data["contact_id"])
        if contact is None or contact["_business_id"] != bid or contact.get("deleted_at"):
            raise not_found("contact_id")
        if not any(t["id"] == "CUSTOMER" for t in contact["contact_types"]):
            raise invalid("contact_id", "can't find customer")
        date = parse_date(data["date"], "date")
        status_id = data.get("status_id") or "UNPAID"
        if status_id not in ("UNPAID", "DRAFT"):
            raise invalid("status_id", "is not a valid status for a new document")
        currency_id = data.get("currency_id") or self.business_currency(bid)
        currency = biz["_currencies"].get(currency_id)
        if currency is None:
            raise not_found("currency_id")
        foreign = currency_id != self.business_currency(bid)
        if foreign and not biz["_financial_settings"]["multi_currency_enabled"]:
            raise invalid("currency_id", "multi-currency is not enabled for this business")
        rate = Decimal(1)
        if foreign:
            rate = to_decimal(data.get("exchange_rate") or 1, "exchange_rate")
        if rate <= 0:
            raise invalid("exchange_rate", "must be greater than 0")

        lines_in = data.get(meta["lines"]) or []
        if not lines_in:
            raise invalid(meta["lines"], "can't be blank")
        lines, analysis = [], {}
        for idx, line in enumerate(lines_in):
            lines.append(self._line(bid, meta["lines"], idx, line, rate, analysis))
        net = sum((ln["net_amount"] for ln in lines), ZERO)
        tax = sum((ln["tax_amount"] for ln in lines), ZERO)
        discount = sum((ln["discount_amount"] for ln in lines), ZERO)
        quantity = sum((ln["quantity"] for ln in lines), ZERO)
        shipping_net = money(to_decimal(data.get("shipping_net_amount") or 0,
                                        "shipping_net_amount"))
        shipping_tax = ZERO
        shipping_rate = None
        if data.get("shipping_tax_rate_id"):
            shipping_rate = self.tax_rate(bid, data["shipping_tax_rate_id"], "shipping_tax_rate_id")
            if data.get("shipping_tax_amount") is not None:
                shipping_tax = money(to_decimal(data["shipping_tax_amount"], "shipping_tax_amount"))
            else:
                shipping_tax = money(shipping_net * shipping_rate["percentage"] / 100)
        net, tax = net + shipping_net, tax + shipping_tax
        total = net + tax

        due = data.get("due_date")
        due_date = parse_date(due, "due_date") if due else date + dt.timedelta(
            days=contact.get("credit_days") or settings["customer_credit_days"])
        orig = data.get("original_invoice_date")
        original_date = parse_date(orig, "original_invoice_date") if orig else None

        # numbering last: nothing below may fail, so no number is burnt by an error
        number_field = meta["number"]
        prefix = data.get(meta["prefix_field"]) or settings[meta["prefix_setting"]]
        existing = biz.setdefault("_numbers", {}).setdefault(kind, set())
        if data.get(number_field):
            number = data[number_field]
            if number in existing:
                raise invalid(number_field, "has already been taken")
        else:
            n = settings[meta["counter"]]
            while f"{prefix}{n}" in existing:
                n += 1
            number = f"{prefix}{n}"
            settings[meta["counter"]] = n + 1
        aid = self.new_id()
        now = self.now()

        def base(amount: Decimal) -> Decimal:
            return money(amount / rate)

        rec = {
            "id": aid, "displayed_as": number, "$path": f"/{kind}/{aid}",
            "created_at": now, "updated_at": now, "links": [],
            "editable": True, "transaction": None,
            "transaction_type": ttype_link(meta["transaction_type"]), "deleted_at": None,
            "contact": base_of(contact), meta["prefix_field"]: prefix, number_field: number,
            "contact_name": data.get("contact_name") or contact["name"],
            "contact_reference": data.get("contact_reference") or contact.get("reference") or "",
            "date": date, "due_date": due_date, "reference": data.get("reference"),
            "main_address": self._sales_address(data.get("main_address")),
            "delivery_address": self._sales_address(data.get("delivery_address")),
            "notes": data.get("notes"), "terms_and_conditions": data.get("terms_and_conditions"),
            "shipping_net_amount": shipping_net,
            "shipping_tax_rate": base_of(shipping_rate) if shipping_rate else None,
            "shipping_tax_amount": shipping_tax,
            "shipping_total_amount": shipping_net + shipping_tax,
            "total_quantity": quantity, "net_amount": net, "tax_amount": tax, "total_amount": total,
            "payments_allocations_total_amount": ZERO, "payments_allocations_total_discount": ZERO,
            "total_paid": ZERO, "outstanding_amount": total,
            "currency": dict(currency), "exchange_rate": rate,
            "inverse_exchange_rate": (Decimal(1) / rate).quantize(Decimal("0.000001")),
            "base_currency_shipping_net_amount": base(shipping_net),
            "base_currency_shipping_tax_amount": base(shipping_tax),
            "total_discount_amount": discount,
            "base_currency_total_discount_amount": base(discount),
            "base_currency_net_amount": base(net), "base_currency_tax_amount": base(tax),
            "base_currency_total_amount": base(total),
            "base_currency_outstanding_amount": base(total),
            "status": status_link(status_id), "sent": bool(data.get("sent", False)),
            "sent_by_email": False, "void_reason": None, meta["lines"]: lines,
            "tax_analysis": list(analysis.values()), "last_paid": None,
            "_kind": kind, "_payments_allocations": [],
        }
        if kind == "sales_credit_notes":
            rec["original_invoice_date"] = original_date
        self._stamp(rec, bid)
        getattr(self, kind)[aid] = rec
        existing.add(number)
        rec["transaction"] = base_of(self._transaction(bid, rec, meta["transaction_type"], total))
        return rec

    def _sales_address(self, data: dict | None) -> dict | None:
        if not data:
            return None
        country = data.get("country_id")
        return {
            "address_line_1": data.get("address_line_1"),
            "address_line_2": data.get("address_line_2"),
            "city": data.get("city"), "postal_code": data.get("postal_code"),
            "region": data.get("region"),
            "country": link("countries", country, COUNTRY_NAMES.get(country, country))
            if country else None,
        }

    def _line(self, bid: str, lines_key: str, idx: int, line: dict, rate: Decimal,
              analysis: dict) -> dict:
        src = f"{lines_key}"
        ledger = self.ledger_accounts.get(line["ledger_account_id"])
        if ledger is None or ledger["_business_id"] != bid:
            raise not_found(f"{src}.ledger_account_id")
        if not ledger["visible_in_sales"]:
            raise invalid(f"{src}.ledger_account_id",
                          f"ledger account {ledger['nominal_code']} is not visible in sales"
                          f" (at {lines_key}[{idx}])")
        if line.get("tax_rate_id"):
            tax_rate = self.tax_rate(bid, line["tax_rate_id"], f"{src}.tax_rate_id")
        elif ledger.get("tax_rate"):
            tax_rate = self.businesses[bid]["_tax_rates"][ledger["tax_rate"]["id"]]
        else:
            tax_rate = None
        quantity = Decimal(1)
        if line.get("quantity") is not None:
            quantity = to_decimal(line["quantity"], f"{src}.quantity")
        unit_price = to_decimal(line["unit_price"], f"{src}.unit_price")
        if line.get("discount_amount") is not None:
            discount = money(to_decimal(line["discount_amount"], f"{src}.discount_amount"))
        elif line.get("discount_percentage") is not None:
            pct = to_decimal(line["discount_percentage"], f"{src}.discount_percentage")
            discount = money(quantity * unit_price * pct / 100)
        else:
            discount = ZERO
        gross = money(quantity * unit_price - discount)
        zero_type = tax_rate is None or tax_rate["id"].endswith(ZERO_TYPE_TAX_SUFFIXES)
        if line.get("tax_amount") is not None:
            tax = money(to_decimal(line["tax_amount"], f"{src}.tax_amount"))
        elif zero_type:
            tax = ZERO
        else:
            raise invalid(f"{src}.tax_amount",
                          f"can't be blank unless the tax rate is zero, exempt or no-tax"
                          f" (at {lines_key}[{idx}])")
        if line.get("unit_price_includes_tax"):
            total, net = gross, gross - tax
        else:
            net, total = gross, gross + tax
        lid = self.new_id()
        tax_link = base_of(tax_rate) if tax_rate else None
        if tax_rate:
            bucket = analysis.setdefault(tax_rate["id"], {
                "tax_rate": tax_link, "net_amount": ZERO, "tax_amount": ZERO,
                "total_amount": ZERO, "goods_amount": ZERO, "service_amount": ZERO})
            bucket["net_amount"] += net
            bucket["tax_amount"] += tax
            bucket["total_amount"] += total
            bucket["goods_amount"] += net
        return {
            "id": lid, "displayed_as": line["description"], "description": line["description"],
            "product": None, "service": None, "ledger_account": base_of(ledger),
            "trade_of_asset": bool(line.get("trade_of_asset", False)),
            "quantity": quantity, "unit_price": unit_price, "net_amount": net,
            "tax_rate": tax_link, "tax_amount": tax,
            "tax_breakdown": [{"tax_rate": tax_link, "percentage": tax_rate["percentage"],
                               "amount": tax}] if tax_rate else [],
            "total_amount": total,
            "base_currency_unit_price": money(unit_price / rate),
            "unit_price_includes_tax": bool(line.get("unit_price_includes_tax", False)),
            "base_currency_net_amount": money(net / rate),
            "base_currency_tax_amount": money(tax / rate),
            "base_currency_total_amount": money(total / rate),
            "discount_amount": discount, "base_currency_discount_amount": money(discount / rate),
            "discount_percentage": money(discount / (quantity * unit_price) * 100)
            if quantity * unit_price else ZERO,
        }

    def _transaction(self, bid: str, origin: dict, type_id: str, total: Decimal) -> dict:
        tid = self.new_id()
        txn = self._stamp({
            "id": tid, "displayed_as": origin["displayed_as"], "$path": f"/transactions/{tid}",
            "date": origin.get("date"), "deleted": False, "reference": origin.get("reference"),
            "total": total, "total_in_transaction_currency": total,
            "contact": origin.get("contact"), "transaction_type": ttype_link(type_id),
            "origin": base_of(origin), "audit_trail_id": str(self._seq),
            "number_of_attachments": "0",
        }, bid)
        self.transactions[tid] = txn
        return txn

    def find_artefact(self, artefact_id: str, bid: str | None = None) -> dict:
        rec = self.sales_invoices.get(artefact_id) or self.sales_credit_notes.get(artefact_id)
        if rec is None or (bid is not None and rec["_business_id"] != bid):
            raise not_found("artefact_id")
        return rec

    def _refresh_status(self, rec: dict) -> None:
        if rec["status"]["id"] in ("VOID", "DRAFT"):
            return
        if rec["outstanding_amount"] <= 0:
            status = "PAID"
        elif rec["total_paid"] > 0:
            status = "PART_PAID"
        else:
            status = "UNPAID"
        rec["status"] = status_link(status)
        rec["base_currency_outstanding_amount"] = money(rec["outstanding_amount"]
                                                        / rec["exchange_rate"])
        txn = self.transactions.get((rec.get("transaction") or {}).get("id"))
        if txn:
            self.touch(txn)

    def void_artefact(self, bid: str | None, artefact_id: str, void_reason: str | None) -> dict:
        rec = self.find_artefact(artefact_id, bid)
        if rec.get("deleted_at"):
            raise not_found()
        status = rec["status"]["id"]
        if status == "DRAFT":
            rec["deleted_at"] = self.now()
            self.touch(rec)
            return rec
        if status == "VOID":
            raise invalid("base", "This document has already been voided.")
        if not void_reason:
            raise invalid("void_reason", "can't be blank")
        if len(void_reason) > 200:
            raise invalid("void_reason", "is too long (maximum is 200 characters)")
        if rec["total_paid"] > 0:
            raise invalid("base", "You cannot void a document that has payments or allocations"
                                  " against it. Remove them first.")
        rec["status"] = status_link("VOID")
        rec["void_reason"] = void_reason
        rec["outstanding_amount"] = ZERO
        rec["base_currency_outstanding_amount"] = ZERO
        rec["editable"] = False
        self.touch(rec)
        txn = self.transactions.get(rec["transaction"]["id"])
        if txn:
            txn["deleted"] = True
            self.touch(txn)
        return rec

    # ---------------------------------------------------------------- allocations & payments
    def _check_payable(self, rec: dict) -> None:
        if rec["status"]["id"] not in ("UNPAID", "PART_PAID"):
            raise invalid("allocated_artefacts", NOT_PAYABLE)

    def create_allocation(self, bid: str, data: dict) -> dict:
        if data["transaction_type_id"] != "CUSTOMER_ALLOCATION":
            raise invalid("transaction_type_id", "is not supported by the sandbox"
                          " (only CUSTOMER_ALLOCATION)")
        if self.subscription_id(bid) in START_SUBSCRIPTIONS:
            raise SageError(403, "Contact allocations are not available in Accounting Start.",
                            "AuthorizationFailure", "base")
        contact = self.get("contacts", bid, data["contact_id"], "contact_id")
        items = data.get("allocated_artefacts") or []
        if len(items) < 2:
            raise invalid("allocated_artefacts", "at least two artefacts must be allocated")
        plan, total = [], ZERO
        for item in items:
            rec = self.find_artefact(item.get("artefact_id") or "", bid)
            if rec.get("deleted_at"):
                raise not_found("allocated_artefacts.artefact_id")
            if rec["contact"]["id"] != contact["id"]:
                raise invalid("allocated_artefacts.artefact_id",
                              "artefact does not belong to this contact")
            amount = money(to_decimal(item.get("amount"), "allocated_artefacts.amount"))
            if rec["_kind"] == "sales_invoices" and amount <= 0:
                raise invalid("allocated_artefacts.amount",
                              "must be positive for an invoice")
            if rec["_kind"] == "sales_credit_notes" and amount >= 0:
                raise invalid("allocated_artefacts.amount",
                              "must be negative for a credit note")
            self._check_payable(rec)
            if abs(amount) > rec["outstanding_amount"]:
                raise invalid("allocated_artefacts", NOT_PAYABLE)
            plan.append((rec, amount))
            total += amount
        if total != 0:
            raise invalid("allocated_artefacts", "The allocated amounts must sum to zero.")
        date = parse_date(data["date"], "date") if data.get("date") else self.today()
        aid = self.new_id()
        rec_out = self._stamp({
            "id": aid, "displayed_as": "Customer Allocation",
            "$path": f"/contact_allocations/{aid}",
            "links": [], "transaction": None,
            "transaction_type": ttype_link("CUSTOMER_ALLOCATION"), "deleted_at": None,
            "date": date, "contact": base_of(contact), "allocated_artefacts": [],
        }, bid)
        for rec, amount in plan:
            rec_out["allocated_artefacts"].append({
                "id": self.new_id(), "artefact": {**base_of(rec), "links": []}, "amount": amount})
            self._apply(rec, abs(amount), ZERO, date, {
                "links": [], "date": date, "type": "CUSTOMER_ALLOCATION", "reference": None,
                "amount": abs(amount), "discount": ZERO,
                "contact_allocation": base_of(rec_out), "displayed_as": "Customer Allocation",
                "negative_payment": False})
        self.contact_allocations[aid] = rec_out
        txn = self._transaction(bid, rec_out, "CUSTOMER_ALLOCATION", ZERO)
        rec_out["transaction"] = base_of(txn)
        return rec_out

    def _apply(self, rec: dict, amount: Decimal, discount: Decimal, date: dt.date,
               entry: dict) -> None:
        rec["outstanding_amount"] -= amount + discount
        rec["total_paid"] += amount
        rec["payments_allocations_total_amount"] += amount
        rec["payments_allocations_total_discount"] += discount
        if rec["last_paid"] is None or date > rec["last_paid"]:
            rec["last_paid"] = date
        rec["_payments_allocations"].append(entry)
        self._refresh_status(rec)
        self.touch(rec)

    def create_payment(self, bid: str, data: dict) -> dict:
        if data["transaction_type_id"] != "CUSTOMER_RECEIPT":
            raise invalid("transaction_type_id", "is not supported by the sandbox"
                          " (only CUSTOMER_RECEIPT)")
        contact = self.get("contacts", bid, data["contact_id"], "contact_id")
        bank = self.get("bank_accounts", bid, data["bank_account_id"], "bank_account_id")
        date = parse_date(data["date"], "date")
        total = money(to_decimal(data["total_amount"], "total_amount"))
        if total <= 0:
            raise invalid("total_amount", "must be greater than 0")
        method_id = data.get("payment_method_id") or "BANK_TRANSFER"
        methods = dict(PAYMENT_METHODS)
        if method_id not in methods:
            raise not_found("payment_method_id")
        plan, allocated = [], ZERO
        for item in data.get("allocated_artefacts") or []:
            rec = self.find_artefact(item.get("artefact_id") or "", bid)
            if rec["_kind"] != "sales_invoices" or rec["contact"]["id"] != contact["id"]:
                raise invalid("allocated_artefacts.artefact_id",
                              "must be a sales invoice of this contact")
            amount = money(to_decimal(item.get("amount"), "allocated_artefacts.amount"))
            discount = money(to_decimal(item.get("discount") or 0, "allocated_artefacts.discount"))
            if amount <= 0:
                raise invalid("allocated_artefacts.amount", "must be greater than 0")
            self._check_payable(rec)
            if amount + discount > rec["outstanding_amount"]:
                raise invalid("allocated_artefacts", NOT_PAYABLE)
            plan.append((rec, amount, discount))
            allocated += amount
        if allocated > total:
            raise invalid("total_amount", "must be at least the sum of the allocated amounts")
        remainder = total - allocated
        if remainder > 0 and self.subscription_id(bid) in START_SUBSCRIPTIONS:
            raise invalid("total_amount",
                          "payments on account are not available in Accounting Start")
        pid = self.new_id()
        ccy = self.businesses[bid]["_currencies"][self.business_currency(bid)]
        rec_out = self._stamp({
            "id": pid, "displayed_as": data.get("reference") or "Customer Receipt",
            "$path": f"/contact_payments/{pid}", "links": [], "transaction": None,
            "transaction_type": ttype_link("CUSTOMER_RECEIPT"), "deleted_at": None,
            "payment_method": link("payment_methods", method_id, methods[method_id]),
            "contact": base_of(contact), "bank_account": base_of(bank), "date": date,
            "net_amount": total, "tax_amount": ZERO, "total_amount": total,
            "currency": dict(ccy), "exchange_rate": Decimal(1),
            "base_currency_net_amount": total, "base_currency_tax_amount": ZERO,
            "base_currency_total_amount": total, "base_currency_currency_charge": ZERO,
            "reference": data.get("reference"), "allocated_artefacts": [], "tax_rate": None,
            "payment_on_account": None, "editable": True,
        }, bid)
        for rec, amount, discount in plan:
            rec_out["allocated_artefacts"].append({
                "id": self.new_id(), "artefact": {**base_of(rec), "links": []},
                "amount": amount, "discount": discount})
            self._apply(rec, amount, discount, date, {
                "links": [], "date": date, "type": "CUSTOMER_RECEIPT",
                "reference": data.get("reference"), "amount": amount, "discount": discount,
                "contact_payment": base_of(rec_out), "displayed_as": rec_out["displayed_as"],
                "negative_payment": False})
        if remainder > 0:
            poa_id = self.new_id()
            rec_out["payment_on_account"] = {
                "id": poa_id, "displayed_as": "Payment on Account",
                "$path": f"/payments_on_account/{poa_id}", "created_at": self.now(),
                "updated_at": self.now(), "contact_name": contact["name"],
                "contact_reference": contact.get("reference"), "contact": base_of(contact),
                "date": date, "reference": data.get("reference"), "net_amount": remainder,
                "tax_amount": ZERO, "total_amount": remainder, "outstanding_amount": remainder,
                "currency": dict(ccy), "exchange_rate": Decimal(1),
                "base_currency_net_amount": remainder, "base_currency_tax_amount": ZERO,
                "base_currency_total_amount": remainder,
                "base_currency_outstanding_amount": remainder, "status": status_link("UNPAID"),
            }
        bank["balance"] += total
        self.contact_payments[pid] = rec_out
        rec_out["transaction"] = base_of(self._transaction(bid, rec_out, "CUSTOMER_RECEIPT", total))
        return rec_out

    # ---------------------------------------------------------------- admin helpers
    def record_payment(self, invoice_id: str, amount: Any, date: str | None = None) -> dict:
        inv = self.sales_invoices.get(invoice_id)
        if inv is None:
            raise not_found("invoice_id")
        bid = inv["_business_id"]
        return self.create_payment(bid, {
            "transaction_type_id": "CUSTOMER_RECEIPT", "contact_id": inv["contact"]["id"],
            "bank_account_id": self.businesses[bid]["_default_bank_account_id"],
            "date": date or self.today().isoformat(), "total_amount": str(amount),
            "reference": f"Receipt {inv['displayed_as']}"[:25],
            "allocated_artefacts": [{"artefact_id": invoice_id, "amount": str(amount)}],
        })

    def write_off(self, invoice_id: str, ledger_account_id: str | None = None) -> dict:
        """Sage KB recipe: credit note on Bad Debts (8100) + contact allocation."""
        inv = self.sales_invoices.get(invoice_id)
        if inv is None:
            raise not_found("invoice_id")
        bid = inv["_business_id"]
        self._check_payable(inv)
        if ledger_account_id is None:
            ledger = self.ledger_by_nominal(bid, 8100)
            if ledger is None:
                raise not_found("ledger_account_id", "Bad Debts ledger account (8100) not found")
            ledger_account_id = ledger["id"]
        outstanding = inv["outstanding_amount"]
        taxed = [ln for ln in inv["invoice_lines"] if ln["tax_rate"]]
        if inv["total_amount"] and inv["tax_amount"] and taxed:
            net = money(outstanding * inv["net_amount"] / inv["total_amount"])
            tax = outstanding - net
            rate_id = taxed[0]["tax_rate"]["id"]
        else:
            net, tax = outstanding, ZERO
            rate_id = next((r for r in self.businesses[bid]["_tax_rates"] if r.endswith("_NO_TAX")),
                           None)
        line = {"description": f"Bad debt write-off {inv['displayed_as']}",
                "ledger_account_id": ledger_account_id, "quantity": 1, "unit_price": str(net),
                "tax_amount": str(tax)}
        if rate_id:
            line["tax_rate_id"] = rate_id
        note = self.create_artefact("sales_credit_notes", bid, {
            "contact_id": inv["contact"]["id"], "date": self.today().isoformat(),
            "reference": f"WO {inv['displayed_as']}"[:25],
            "notes": f"Bad debt write-off of {inv['displayed_as']}",
            "currency_id": inv["currency"]["id"], "exchange_rate": str(inv["exchange_rate"]),
            "credit_note_lines": [line]})
        alloc = self.create_allocation(bid, {
            "transaction_type_id": "CUSTOMER_ALLOCATION", "contact_id": inv["contact"]["id"],
            "date": self.today().isoformat(),
            "allocated_artefacts": [
                {"artefact_id": inv["id"], "amount": str(outstanding)},
                {"artefact_id": note["id"], "amount": str(-outstanding)}]})
        return {"sales_credit_note": note, "contact_allocation": alloc}
