"""Pure tests (no Odoo) for sage_api.documents: Odoo documents -> Sage payloads."""

from datetime import date
from decimal import Decimal

import pytest

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import SageValidationError, documents
from sage_api.exceptions import SageErrorDetail


def line(**values):
    base = {
        "description": "Consulting day",
        "quantity": 2,
        "price_unit": 150,
        "price_subtotal": 300,
        "price_total": 360,
        "tax_amount": 60,
        "ledger_id": "L4000",
        "tax_rate_id": "GB_STANDARD",
    }
    base.update(values)
    return base


def doc(**values):
    base = {
        "resource": documents.INVOICE,
        "contact_id": "C1",
        "date": date(2026, 1, 15),
        "due_date": date(2026, 2, 14),
        "reference": "INV/2026/00001",
        "notes": None,
        "currency": "GBP",
        "business_currency": "GBP",
        "exchange_rate": 1,
        "numbering_mode": "sage",
        "number": "INV/2026/00001",
        "lines": [line()],
    }
    base.update(values)
    return base


# ----------------------------------------------------------------------------
# Text and references
# ----------------------------------------------------------------------------
class TestText:
    def test_html_is_stripped_and_entities_decoded(self):
        assert documents.plain_text("<p>Hello <b>world</b> &amp; co</p>") == "Hello world & co"

    def test_block_tags_become_line_breaks(self):
        text = documents.plain_text("<p>First</p><p>Second<br/>third</p>")
        assert text == "First\n\nSecond\nthird"  # paragraphs keep one blank line

    def test_plain_text_with_angle_brackets_is_untouched(self):
        assert documents.plain_text("a < b and c > d") == "a < b and c > d"

    def test_non_ascii_is_kept(self):
        assert documents.plain_text("Crème brûlée – 12 × €") == "Crème brûlée – 12 × €"

    def test_empty_values(self):
        assert documents.plain_text(None) == ""
        assert documents.plain_text(False) == ""
        assert documents.plain_text("<p><br></p>") == ""

    def test_limit(self):
        text = documents.plain_text("x" * 3000, documents.NOTES_MAX)
        assert len(text) == 2000
        assert text.endswith("…")

    def test_truncate_keeps_short_text(self):
        assert documents.truncate("abc", 3) == "abc"
        assert documents.truncate("abcd", 3) == "ab…"


class TestReference:
    def test_customer_reference_wins(self):
        assert documents.document_reference("PO 4711", "INV/2026/00001") == "PO 4711"

    def test_odoo_number_when_no_customer_reference(self):
        assert documents.document_reference(False, "INV/2026/00001") == "INV/2026/00001"
        assert documents.document_reference("  ", "INV/2026/00001") == "INV/2026/00001"

    def test_long_reference_truncated_to_25(self):
        reference = documents.document_reference("PO-2026-000123456789-ACME-PURCHASING", "X")
        assert len(reference) == 25
        assert reference == "PO-2026-000123456789-ACM…"

    def test_exactly_25_is_kept(self):
        assert documents.document_reference("A" * 25, "X") == "A" * 25

    def test_whitespace_collapsed(self):
        assert documents.document_reference("PO\n 12\t34", "X") == "PO 12 34"

    def test_number_in_odoo_mode(self):
        assert documents.document_number("INV/2026/7", "OD-", "-X") == "OD-INV/2026/7-X"
        assert documents.document_number("INV/2026/7", None, False) == "INV/2026/7"


class TestDueDate:
    def test_payment_terms_give_the_due_date(self):
        assert documents.due_date(
            date(2026, 1, 15), date(2026, 3, 31), has_payment_terms=True, default_due_days=30
        ) == date(2026, 3, 31)

    def test_default_days_without_payment_terms(self):
        assert documents.due_date(
            date(2026, 1, 15), date(2026, 1, 15), has_payment_terms=False, default_due_days=14
        ) == date(2026, 1, 29)

    def test_zero_default_days_is_due_on_invoice_date(self):
        assert documents.due_date("2026-01-15", None, False, 0) == date(2026, 1, 15)

    def test_never_before_invoice_date(self):
        assert documents.due_date(
            date(2026, 1, 15), date(2026, 1, 1), has_payment_terms=True
        ) == date(2026, 1, 15)


# ----------------------------------------------------------------------------
# Contacts
# ----------------------------------------------------------------------------
class TestContacts:
    def test_reference_is_letters_then_partner_id(self):
        assert documents.contact_reference("Acme Ltd", 42) == "ACMELTD42"
        assert documents.contact_reference("Northwind Traders", 1234) == "NORTHW1234"

    @pytest.mark.parametrize(
        "name, key",
        [("Zoë Café", 7), ("", 99), ("1234 5678", 5), ("Ünïcødé ☃ Ltd", 123456789)],
    )
    def test_reference_is_ascii_and_at_most_10(self, name, key):
        reference = documents.contact_reference(name, key)
        assert 0 < len(reference) <= 10
        assert reference.isascii()
        assert reference.endswith(str(key)[-9:])

    def test_references_of_different_partners_differ(self):
        # The letters part holds no digit, so the partner id is always readable
        # at the end: two partners (two ids) never share a reference.
        names = ["AB", "A", "ABC", "Acme", "Acme Ltd", "Acme Limited", "B", "", "12"]
        ids = [1, 2, 11, 12, 21, 112, 121, 1234, 99999, 123456789]
        references = [
            documents.contact_reference(names[n % len(names)], partner_id)
            for n, partner_id in enumerate(ids)
        ]
        assert len(set(references)) == len(ids)
        references = {documents.contact_reference("Same Name", partner_id) for partner_id in ids}
        assert len(references) == len(ids)

    def test_variant_gives_another_stable_reference(self):
        first = documents.contact_reference("Acme", 42, variant=1)
        assert first == documents.contact_reference("Acme", 42, variant=1)
        assert first != documents.contact_reference("Acme", 42)
        assert first != documents.contact_reference("Acme", 42, variant=2)
        assert len(first) == 10

    def test_payload(self):
        payload = documents.contact_payload(
            {
                "name": "Zoë <b>Café</b>",
                "email": "zoe@cafe.example",
                "street": "1 High St",
                "city": "Leeds",
                "zip": "LS1",
                "country_code": "gb",
                "vat": "GB123",
                "phone": "0113",
            },
            "ZOECAFE7",
        )
        assert payload["name"] == "Zoë Café"
        assert payload["contact_type_ids"] == ["CUSTOMER"]
        assert payload["reference"] == "ZOECAFE7"
        assert payload["tax_number"] == "GB123"
        assert payload["main_address"]["country_id"] == "GB"
        assert payload["main_address"]["city"] == "Leeds"
        person = payload["main_contact_person"]
        assert person["email"] == "zoe@cafe.example"
        assert person["is_main_contact"] is True
        assert person["telephone"] == "0113"

    def test_payload_without_address(self):
        payload = documents.contact_payload({"name": "X", "email": "x@x.example"}, "X1")
        assert "main_address" not in payload

    def test_long_name_truncated_to_100(self):
        payload = documents.contact_payload({"name": "N" * 150, "email": "e@x"}, "N1")
        assert len(payload["name"]) == 100
        # Sage's contact person name holds 50 characters only.
        assert len(payload["main_contact_person"]["name"]) == 50


# ----------------------------------------------------------------------------
# Lines and documents
# ----------------------------------------------------------------------------
class TestLines:
    def test_plain_line(self):
        body = documents.line_payload(line())
        assert body == {
            "description": "Consulting day",
            "ledger_account_id": "L4000",
            "quantity": Decimal(2),
            "unit_price": Decimal(150),
            "tax_rate_id": "GB_STANDARD",
            "tax_amount": Decimal("60.00"),
        }

    def test_discount_sent_as_amount_landing_on_odoo_subtotal(self):
        # 3 x 33.33 = 99.99, 12.5% off: Odoo says 87.49
        body = documents.line_payload(
            line(
                quantity=3,
                price_unit="33.33",
                price_subtotal="87.49",
                price_total="104.99",
                tax_amount="17.50",
            )
        )
        assert body["discount_amount"] == Decimal("12.50")
        gross = (body["quantity"] * body["unit_price"] - body["discount_amount"]).quantize(
            Decimal("0.01")
        )
        assert gross == Decimal("87.49")

    def test_odd_quantity_rounding_matches(self):
        # 1.333 x 7.77 = 10.35741 -> 10.36 both sides: no discount needed
        body = documents.line_payload(
            line(
                quantity="1.333",
                price_unit="7.77",
                price_subtotal="10.36",
                price_total="12.43",
                tax_amount="2.07",
            )
        )
        assert "discount_amount" not in body

    def test_tax_included_price(self):
        body = documents.line_payload(
            line(
                quantity=7,
                price_unit="9.99",
                price_subtotal="58.28",
                price_total="69.93",
                tax_amount="11.65",
                price_include=True,
            )
        )
        assert body["unit_price_includes_tax"] is True
        assert "discount_amount" not in body
        assert body["tax_amount"] == Decimal("11.65")

    def test_html_description(self):
        body = documents.line_payload(line(description="<b>Bold</b> widget &amp; co"))
        assert body["description"] == "Bold widget & co"

    def test_empty_description(self):
        assert documents.line_payload(line(description=False))["description"] == "-"


class TestDocuments:
    def test_invoice_in_sage_numbering(self):
        body = documents.sales_document_payload(doc(notes="<p>Thanks</p>"))
        assert body["contact_id"] == "C1"
        assert body["date"] == "2026-01-15"
        assert body["due_date"] == "2026-02-14"
        assert body["reference"] == "INV/2026/00001"
        assert body["notes"] == "Thanks"
        assert len(body["invoice_lines"]) == 1
        assert "invoice_number" not in body
        assert "currency_id" not in body
        assert "exchange_rate" not in body

    def test_invoice_in_odoo_numbering(self):
        body = documents.sales_document_payload(
            doc(numbering_mode="odoo", number="OD-INV/2026/00001")
        )
        assert body["invoice_number"] == "OD-INV/2026/00001"

    def test_credit_note(self):
        body = documents.sales_document_payload(
            doc(
                resource=documents.CREDIT_NOTE,
                numbering_mode="odoo",
                number="RINV/1",
                original_invoice_date=date(2026, 1, 1),
            )
        )
        assert "credit_note_lines" in body
        assert "invoice_lines" not in body
        assert "due_date" not in body
        assert body["credit_note_number"] == "RINV/1"
        assert body["original_invoice_date"] == "2026-01-01"

    def test_foreign_currency_sends_currency_and_rate(self):
        body = documents.sales_document_payload(doc(currency="EUR", exchange_rate=1.1734512345))
        assert body["currency_id"] == "EUR"
        assert body["exchange_rate"] == Decimal("1.173451")

    def test_long_notes_truncated(self):
        body = documents.sales_document_payload(doc(notes="n" * 2500))
        assert len(body["notes"]) == documents.NOTES_MAX

    def test_unknown_resource(self):
        with pytest.raises(ValueError):
            documents.sales_document_payload(doc(resource="purchase_invoice"))

    def test_write_off_payload(self):
        body = documents.write_off_payload(
            contact_id="C1",
            amount="260",
            date="2026-03-01",
            ledger_id="L8100",
            tax_rate_id="GB_NO_TAX",
            invoice_number="SI-7",
            currency="GBP",
            business_currency="GBP",
        )
        assert body["reference"] == "WO SI-7"
        [wo_line] = body["credit_note_lines"]
        assert wo_line["unit_price"] == Decimal("260.00")
        assert wo_line["tax_amount"] == Decimal("0.00")
        assert wo_line["ledger_account_id"] == "L8100"
        assert wo_line["tax_rate_id"] == "GB_NO_TAX"
        assert "discount_amount" not in wo_line

    def test_write_off_needs_a_positive_amount(self):
        with pytest.raises(ValueError):
            documents.write_off_payload(
                contact_id="C",
                amount=0,
                date="2026-01-01",
                ledger_id="L",
                tax_rate_id="T",
                invoice_number="SI-1",
            )

    def test_allocation_lines_signs(self):
        assert documents.allocation_lines("INV", "CN", "12.345") == [
            ("INV", Decimal("12.35")),
            ("CN", Decimal("-12.35")),
        ]
        with pytest.raises(ValueError):
            documents.allocation_lines("INV", "CN", 0)


# ----------------------------------------------------------------------------
# After the push
# ----------------------------------------------------------------------------
class TestAfterPush:
    def test_total_difference_tolerates_a_cent(self):
        assert documents.total_difference("360.01", 360) is None
        assert documents.total_difference(Decimal("359.99"), 360) is None
        assert documents.total_difference("360.02", 360) == Decimal("0.02")
        assert documents.total_difference(None, 360) is None

    def item(self, **values):
        base = {
            "id": "S1",
            "displayed_as": "SI-1",
            "reference": "INV/1",
            "contact": {"id": "C1"},
            "date": "2026-01-15",
            "total_amount": "360.0",
            "status": {"id": "UNPAID"},
        }
        base.update(values)
        return base

    def test_find_matches(self):
        items = [
            self.item(),
            self.item(id="S2", total_amount="361.0"),
            self.item(id="S3", contact={"id": "C2"}),
            self.item(id="S4", status={"id": "VOID"}),
            self.item(id="S5", reference="INV/2"),
        ]
        exact, partial = documents.find_matches(
            items, contact_id="C1", date="2026-01-15", total=Decimal(360), reference="INV/1"
        )
        assert [c["id"] for c in exact] == ["S1"]
        assert [c["id"] for c in partial] == ["S2"]
        assert exact[0]["number"] == "SI-1"
        assert exact[0]["total"] == Decimal("360.0")

    def test_find_matches_by_number(self):
        items = [self.item(displayed_as="OD-INV/1", reference="PO 1")]
        exact, _partial = documents.find_matches(
            items, contact_id="C1", date=date(2026, 1, 15), total=360, number="OD-INV/1"
        )
        assert [c["id"] for c in exact] == ["S1"]

    def test_duplicate_number_error(self):
        error = SageValidationError(
            status=422,
            errors=[
                SageErrorDetail(
                    "error", "RecordInvalid", "has already been taken", "invoice_number"
                )
            ],
        )
        assert documents.is_duplicate_number_error(error)
        assert not documents.is_duplicate_reference_error(error)
        other = SageValidationError(
            status=422, errors=[SageErrorDetail("error", "RecordInvalid", "can't be blank", "date")]
        )
        assert not documents.is_duplicate_number_error(other)

    def test_duplicate_contact_reference_error(self):
        error = SageValidationError(
            status=422,
            errors=[
                SageErrorDetail("error", "RecordInvalid", "has already been taken", "reference")
            ],
        )
        assert documents.is_duplicate_reference_error(error)
