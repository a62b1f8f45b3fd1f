"""Send to Sage: invoices, credit notes and adjustments arrive in the sandbox
with the right contact, lines, ledgers, taxes, dates and totals, exactly once."""

import uuid
from datetime import date
from decimal import Decimal
from unittest.mock import patch

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from odoo.addons.sage_one_connector.sage_api import documents

from .test_send_common import SagePushCase


@tagged("post_install", "-at_install")
class TestSendInvoice(SagePushCase):
    def test_invoice_arrives_with_contact_lines_ledgers_taxes_dates_totals(self):
        partner = self.make_customer(name="Northwind Traders")
        invoice = self.make_invoice(
            partner,
            lines=[
                {"name": "Consulting day", "quantity": 2, "price_unit": 150.0},
                {
                    "name": "Books",
                    "quantity": 3,
                    "price_unit": 12.5,
                    "tax_ids": [Command.set(self.vat0.ids)],
                },
            ],
            narration="<p>Thank you for your <b>business</b>.</p>",
        )
        action = self.send(invoice, self.team_user)

        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(invoice.sage_state, "sent")
        [record] = self.sage_records("sales_invoices")[-1:]
        self.assertEqual(record["id"], invoice.sage_id)
        self.assertEqual(invoice.sage_number, record["invoice_number"])
        self.assertTrue(invoice.sage_number.startswith("SI-"))
        self.assertEqual(invoice.sage_payment_status, "unpaid")
        self.assertEqual(invoice.sage_attempts, 1)
        self.assertFalse(invoice.sage_last_error)
        self.assertTrue(invoice.sage_sent_date)
        self.assertIn(invoice.sage_id, invoice.sage_url)
        # Contact: created from the partner, and linked for next time.
        contact = self.sandbox.state.contacts[record["contact"]["id"]]
        self.assertEqual(contact["name"], "Northwind Traders")
        self.assertEqual(contact["main_contact_person"]["email"], partner.email)
        self.assertEqual([t["id"] for t in contact["contact_types"]], ["CUSTOMER"])
        self.assertLessEqual(len(contact["reference"]), 10)
        self.assertEqual(contact["main_address"]["city"], "Leeds")
        link = partner.sudo().sage_contact_link_ids
        self.assertEqual(link.sage_contact_id, contact["id"])
        # Header
        self.assertEqual(record["date"], date(2026, 1, 15))
        self.assertEqual(record["reference"], invoice.name)
        self.assertEqual(record["notes"], "Thank you for your business.")
        self.assertEqual(record["currency"]["id"], "GBP")
        # Lines: description, quantity, price, ledger, tax rate, Odoo's tax amount.
        lines = record["invoice_lines"]
        self.assertEqual([ln["description"] for ln in lines], ["Consulting day", "Books"])
        self.assertEqual(lines[0]["quantity"], Decimal(2))
        self.assertEqual(lines[0]["unit_price"], Decimal("150.0"))
        self.assertEqual(lines[0]["ledger_account"]["id"], self.ledger_4000.sage_id)
        self.assertEqual(lines[0]["tax_rate"]["id"], "GB_STANDARD")
        self.assertEqual(lines[0]["tax_amount"], Decimal("60.00"))
        self.assertEqual(lines[1]["tax_rate"]["id"], "GB_ZERO")
        self.assertEqual(lines[1]["net_amount"], Decimal("37.50"))
        # Totals
        self.assertEqual(record["net_amount"], self.dec(invoice.amount_untaxed))
        self.assertEqual(record["tax_amount"], self.dec(invoice.amount_tax))
        self.assertEqual(record["total_amount"], self.dec(invoice.amount_total))
        self.assertEqual(invoice.sage_total_amount, invoice.amount_total)
        # Chatter
        self.assertTrue(
            any(
                "Sent to Sage as" in message.body and invoice.sage_number in message.body
                for message in invoice.message_ids
            )
        )

    def test_contact_link_reused_and_email_match(self):
        partner = self.make_customer()
        first = self.make_invoice(partner)
        self.send(first, self.team_user)
        contacts_before = len(self.sage_records("contacts"))
        second = self.make_invoice(partner)
        self.send(second, self.team_user)
        self.assertEqual(len(self.sage_records("contacts")), contacts_before)
        self.assertEqual(
            self.sage_invoice(first)["contact"]["id"], self.sage_invoice(second)["contact"]["id"]
        )
        # Without the link, the exact (case-insensitive) email finds the same contact.
        contact_id = partner.sudo().sage_contact_link_ids.sage_contact_id
        partner.sudo().sage_contact_link_ids.unlink()
        partner.email = partner.email.upper()
        third = self.make_invoice(partner)
        self.send(third, self.team_user)
        self.assertEqual(len(self.sage_records("contacts")), contacts_before)
        self.assertEqual(self.sage_invoice(third)["contact"]["id"], contact_id)
        self.assertEqual(partner.sudo().sage_contact_link_ids.sage_contact_id, contact_id)

    def test_several_contacts_with_the_email_then_linked_by_hand(self):
        partner = self.make_customer()
        twins = []
        with self.sandbox.lock:
            for name in ("Twin One", "Twin Two"):
                twins.append(
                    self.sandbox.state.create_contact(
                        self.sage_business_id,
                        {
                            "name": name,
                            "contact_type_ids": ["CUSTOMER"],
                            "main_contact_person": {"name": name, "email": partner.email},
                        },
                    )["id"]
                )
        invoice = self.make_invoice(partner)
        with self.assertRaisesRegex(UserError, twins[1]):
            self.send(invoice, self.team_user)
        # The user picks the right contact (Sage > Customer links).
        self.env["sage.contact.link"].with_user(self.team_user).create(
            {
                "partner_id": partner.id,
                "connection_id": self.connection.id,
                "sage_contact_id": twins[1],
            }
        )
        self.send(invoice, self.team_user)
        self.assertEqual(self.sage_invoice(invoice)["contact"]["id"], twins[1])

    def test_invoice_contact_email_of_company_customer(self):
        company = self.make_customer(name="Globex Corporation", email=False, is_company=True)
        person = self.env["res.partner"].create(
            {
                "name": "Hank Scorpio",
                "parent_id": company.id,
                "type": "invoice",
                "email": f"hank-{uuid.uuid4().hex[:6]}@globex.example",
            }
        )
        invoice = self.make_invoice(person)
        self.send(invoice, self.team_user)
        contact = self.sandbox.state.contacts[self.sage_invoice(invoice)["contact"]["id"]]
        self.assertEqual(contact["name"], "Globex Corporation")
        self.assertEqual(contact["main_contact_person"]["email"], person.email)
        self.assertTrue(company.sudo().sage_contact_link_ids)

    def test_ledger_rules_product_then_account_then_default(self):
        product_mapped = self.env["product.product"].create({"name": "Mapped product"})
        other_account = self.revenue_account.copy({"code": "400099"})
        self.env["sage.ledger.mapping"].create(
            [
                {
                    "connection_id": self.connection.id,
                    "product_id": product_mapped.id,
                    "ledger_id": self.ledger_4900.id,
                },
                {
                    "connection_id": self.connection.id,
                    "account_id": other_account.id,
                    "ledger_id": self.ledger_4010.id,
                },
            ]
        )
        invoice = self.make_invoice(
            lines=[
                {
                    "name": "By product",
                    "product_id": product_mapped.id,
                    "quantity": 1,
                    "price_unit": 10,
                    "account_id": other_account.id,
                },
                {
                    "name": "By account",
                    "quantity": 1,
                    "price_unit": 20,
                    "account_id": other_account.id,
                },
                {"name": "Default", "quantity": 1, "price_unit": 30},
            ]
        )
        self.send(invoice)
        ledgers = [ln["ledger_account"]["id"] for ln in self.sage_invoice(invoice)["invoice_lines"]]
        self.assertEqual(
            ledgers, [self.ledger_4900.sage_id, self.ledger_4010.sage_id, self.ledger_4000.sage_id]
        )

    def test_discounts_and_tax_included_prices_match_odoo_totals(self):
        invoice = self.make_invoice(
            lines=[
                {"name": "Discounted", "quantity": 3, "price_unit": 33.33, "discount": 12.5},
                {
                    "name": "Tax included",
                    "quantity": 7,
                    "price_unit": 9.99,
                    "tax_ids": [Command.set(self.vat20_included.ids)],
                },
                {"name": "Odd quantity", "quantity": 1.333, "price_unit": 7.77},
            ]
        )
        self.send(invoice)
        record = self.sage_invoice(invoice)
        odoo_lines = invoice.invoice_line_ids
        for odoo_line, sage_line in zip(odoo_lines, record["invoice_lines"]):
            self.assertEqual(sage_line["net_amount"], self.dec(odoo_line.price_subtotal))
            self.assertEqual(sage_line["total_amount"], self.dec(odoo_line.price_total))
        self.assertEqual(record["total_amount"], self.dec(invoice.amount_total))
        self.assertFalse(invoice.sage_last_error)

    def test_due_date_from_payment_terms_else_default_days(self):
        with_terms = self.make_invoice(invoice_payment_term_id=self.pay_terms_b.id)
        self.connection.default_due_days = 14
        without_terms = self.make_invoice(invoice_payment_term_id=False)
        self.send(with_terms + without_terms)
        self.assertEqual(self.sage_invoice(with_terms)["due_date"], with_terms.invoice_date_due)
        self.assertEqual(self.sage_invoice(without_terms)["due_date"], date(2026, 1, 29))

    def test_long_reference_is_truncated_not_refused(self):
        reference = "PO-2026-000123456789-ACME-PURCHASING-DEPT"
        invoice = self.make_invoice(ref=reference)
        self.send(invoice)
        sent = self.sage_invoice(invoice)["reference"]
        self.assertEqual(len(sent), 25)
        self.assertTrue(reference.startswith(sent[:-1]))
        self.assertTrue(sent.endswith("…"))
        self.assertEqual(invoice.sage_state, "sent")

    def test_html_in_product_names_is_sent_as_plain_text(self):
        invoice = self.make_invoice(
            lines=[
                {"name": "<b>Bold</b> widget &amp; <i>gadget</i>", "quantity": 1, "price_unit": 5},
                {"name": "Size a < b and c > d", "quantity": 1, "price_unit": 5},
            ]
        )
        self.send(invoice)
        descriptions = [ln["description"] for ln in self.sage_invoice(invoice)["invoice_lines"]]
        self.assertEqual(descriptions, ["Bold widget & gadget", "Size a < b and c > d"])

    def test_non_ascii_names_are_sent_intact(self):
        partner = self.make_customer(name="Zoë Café Crème — Ünïcødé Ltd")
        invoice = self.make_invoice(
            partner, lines=[{"name": "Crème brûlée – 12 × €", "quantity": 1, "price_unit": 9}]
        )
        self.send(invoice)
        record = self.sage_invoice(invoice)
        self.assertEqual(record["invoice_lines"][0]["description"], "Crème brûlée – 12 × €")
        contact = self.sandbox.state.contacts[record["contact"]["id"]]
        self.assertEqual(contact["name"], "Zoë Café Crème — Ünïcødé Ltd")
        self.assertTrue(contact["reference"].startswith("ZOECAFE"))
        self.assertTrue(contact["reference"].isascii())

    def test_foreign_currency_sent_with_rate_to_the_business_currency(self):
        settings = self.sandbox.state.businesses[self.sage_business_id]["_financial_settings"]
        settings["multi_currency_enabled"] = True
        self.addCleanup(settings.__setitem__, "multi_currency_enabled", False)
        self.connection.multi_currency_enabled = True
        # Odoo company currency USD, Sage business currency GBP; per USD: 2.0 GBP, 2.4 EUR.
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.4)])
        invoice = self.make_invoice(currency=eur)
        self.send(invoice)
        record = self.sage_invoice(invoice)
        self.assertEqual(record["currency"]["id"], "EUR")
        self.assertEqual(record["exchange_rate"], Decimal("1.2"))  # EUR per GBP
        self.assertEqual(record["total_amount"], Decimal("360.00"))
        self.assertEqual(record["base_currency_total_amount"], Decimal("300.00"))

    def test_foreign_currency_without_multi_currency_is_refused_before_sending(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.4)])
        invoice = self.make_invoice(currency=eur)
        writes = self.sandbox.stats()["writes"]
        with self.assertRaisesRegex(UserError, "multi-currency is not enabled"):
            self.send(invoice)
        self.assertEqual(self.sandbox.stats()["writes"], writes)
        self.assertEqual(invoice.sage_state, "not_sent")

    def test_foreign_currency_refused_by_sage_is_an_error_with_its_message(self):
        # Odoo's copy of the business settings says multi-currency is on, Sage
        # (switched off since the last sync) refuses: the refusal is shown.
        self.connection.multi_currency_enabled = True
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.4)])
        invoice = self.make_invoice(currency=eur)
        action = self.send(invoice)
        self.assertEqual(action["params"]["type"], "danger")
        self.assertEqual(invoice.sage_state, "error")
        self.assertIn("multi-currency is not enabled", invoice.sage_last_error)
        self.assertFalse(invoice.sage_id)
        # Sage refused it: the next attempt may use a new idempotency id.
        self.assertFalse(invoice.sage_idempotency_id)
        self.assertTrue(any("Sending to Sage failed" in m.body for m in invoice.message_ids))

    def test_odoo_numbering_sends_prefixed_number(self):
        prefix = f"O{uuid.uuid4().hex[:3]}-"
        self.connection.write({"numbering_mode": "odoo", "number_prefix": prefix})
        invoice = self.make_invoice()
        self.send(invoice)
        self.assertEqual(invoice.sage_number, f"{prefix}{invoice.name}")
        self.assertEqual(self.sage_invoice(invoice)["invoice_number"], f"{prefix}{invoice.name}")

    def test_odoo_numbering_duplicate_number_is_a_conflict(self):
        prefix = f"D{uuid.uuid4().hex[:3]}-"
        self.connection.write({"numbering_mode": "odoo", "number_prefix": prefix})
        first = self.make_invoice()
        self.send(first)
        # Someone typed our next number in Sage by hand.
        second = self.make_invoice(post=False)
        second.action_post()
        with self.sandbox.lock:
            self.sandbox.state.create_artefact(
                "sales_invoices",
                self.sage_business_id,
                {
                    "contact_id": self.sage_invoice(first)["contact"]["id"],
                    "date": "2026-01-15",
                    "invoice_number": f"{prefix}{second.name}",
                    "invoice_lines": [
                        {
                            "description": "Typed in Sage",
                            "ledger_account_id": self.ledger_4000.sage_id,
                            "unit_price": "1",
                            "tax_rate_id": "GB_NO_TAX",
                        }
                    ],
                },
            )
        action = self.send(second)
        self.assertEqual(action["params"]["type"], "danger")
        self.assertEqual(second.sage_state, "conflict")
        self.assertIn(f"{prefix}{second.name}", second.sage_last_error)
        self.assertIn("prefix", second.sage_last_error)
        self.assertFalse(second.sage_id)
        # Sage refused: the next attempt is a new request with a new idempotency id.
        self.assertFalse(second.sage_idempotency_id)
        self.assertEqual(second.sage_push_generation, 1)
        # With a different suffix it goes through.
        self.connection.number_suffix = "-B"
        self.send(second)
        self.assertEqual(second.sage_state, "sent")
        self.assertEqual(second.sage_number, f"{prefix}{second.name}-B")

    def test_total_difference_is_warned(self):
        invoice = self.make_invoice()
        real_total = invoice.amount_total
        # Sage computes a different total (e.g. its own rounding): tamper a line tax.
        original = documents.line_payload

        def tampered(line):
            body = original(line)
            body["tax_amount"] = body["tax_amount"] + Decimal("0.50")
            return body

        with patch.object(documents, "line_payload", tampered):
            self.send(invoice)
        self.assertEqual(invoice.sage_state, "sent")
        self.assertEqual(invoice.sage_total_amount, real_total + 0.5)
        self.assertIn("differs", invoice.sage_last_error)
        self.assertTrue(any("differs" in message.body for message in invoice.message_ids))

    def test_after_sent_hook_called_once_per_sent_document(self):
        invoices = self.make_invoice() + self.make_invoice()
        calls = []

        def spy(moves):
            calls.append(moves.ids)

        with patch.object(type(self.env["account.move"]), "_sage_after_sent", spy):
            self.send(invoices)
        self.assertEqual(sorted(sum(calls, [])), sorted(invoices.ids))

    def test_list_server_action_sends_selection_one_by_one(self):
        invoices = self.make_invoice() + self.make_invoice() + self.make_invoice()
        action = self.env.ref("sage_one_connector.account_move_action_sage_send")
        result = (
            action.with_user(self.team_user)
            .with_context(active_model="account.move", active_ids=invoices.ids)
            .run()
        )
        self.assertEqual(result["params"]["type"], "success")
        self.assertEqual(set(invoices.mapped("sage_state")), {"sent"})
        self.assertEqual(len(set(invoices.mapped("sage_id"))), 3)


@tagged("post_install", "-at_install")
class TestSendCreditNoteAndAdjustment(SagePushCase):
    def test_credit_note_is_allocated_to_the_invoice_it_reverses(self):
        invoice = self.make_invoice()
        self.send(invoice, self.team_user)
        credit_note = self.make_credit_note(invoice, quantity=1)
        self.send(credit_note, self.manager_user)

        self.assertEqual(credit_note.sage_state, "sent")
        record = self.sage_credit_note(credit_note)
        self.assertTrue(record["credit_note_number"].startswith("SCN-"))
        self.assertEqual(record["contact"]["id"], self.sage_invoice(invoice)["contact"]["id"])
        self.assertEqual(record["original_invoice_date"], date(2026, 1, 15))
        self.assertEqual(record["total_amount"], Decimal("180.00"))
        self.assertEqual(record["credit_note_lines"][0]["tax_rate"]["id"], "GB_STANDARD")
        # Odoo's "Reversal of: INV/..." is not a customer reference: its own number is.
        self.assertEqual(record["reference"], credit_note.name)
        # Allocated: both documents' outstanding amounts went down by 180.
        self.assertTrue(credit_note.sage_allocation_id)
        allocation = self.sandbox.state.contact_allocations[credit_note.sage_allocation_id]
        amounts = {a["artefact"]["id"]: a["amount"] for a in allocation["allocated_artefacts"]}
        self.assertEqual(
            amounts, {invoice.sage_id: Decimal("180.00"), credit_note.sage_id: Decimal("-180.00")}
        )
        self.assertEqual(self.sage_invoice(invoice)["outstanding_amount"], Decimal("180.00"))
        self.assertEqual(self.sage_invoice(invoice)["status"]["id"], "PART_PAID")
        self.assertEqual(record["outstanding_amount"], Decimal("0"))
        self.assertEqual(credit_note.sage_payment_status, "paid")
        self.assertTrue(any("Allocated" in m.body for m in credit_note.message_ids))
        self.assertTrue(any("allocated" in m.body for m in invoice.message_ids))

    def test_full_credit_note_settles_the_invoice(self):
        invoice = self.make_invoice()
        self.send(invoice)
        credit_note = self.make_credit_note(invoice)
        self.send(credit_note)
        self.assertEqual(self.sage_invoice(invoice)["status"]["id"], "PAID")
        self.assertEqual(self.sage_invoice(invoice)["outstanding_amount"], Decimal(0))

    def test_credit_note_of_part_paid_invoice_allocates_what_is_left(self):
        invoice = self.make_invoice()
        self.send(invoice)
        self.sandbox.record_payment(invoice.sage_id, "300.00")
        credit_note = self.make_credit_note(invoice)
        self.send(credit_note)
        allocation = self.sandbox.state.contact_allocations[credit_note.sage_allocation_id]
        amounts = sorted(a["amount"] for a in allocation["allocated_artefacts"])
        self.assertEqual(amounts, [Decimal("-60.00"), Decimal("60.00")])
        self.assertEqual(self.sage_credit_note(credit_note)["outstanding_amount"], Decimal("300"))

    def test_credit_note_of_an_invoice_not_in_sage_is_sent_unallocated(self):
        invoice = self.make_invoice()
        credit_note = self.make_credit_note(invoice)
        allocations_before = len(self.sage_records("contact_allocations"))
        self.send(credit_note)
        self.assertEqual(credit_note.sage_state, "sent")
        self.assertFalse(credit_note.sage_allocation_id)
        self.assertIn("not in Sage", credit_note.sage_last_error)
        self.assertEqual(len(self.sage_records("contact_allocations")), allocations_before)
        # Once the invoice is in Sage, a manager allocates the credit note.
        self.send(invoice)
        with self.assertRaises(AccessError):
            credit_note.with_user(self.team_user).action_sage_allocate()
        credit_note.with_user(self.manager_user).action_sage_allocate()
        self.assertTrue(credit_note.sage_allocation_id)
        self.assertFalse(credit_note.sage_last_error)
        self.assertEqual(credit_note.sage_payment_status, "paid")
        self.assertEqual(self.sage_invoice(invoice)["outstanding_amount"], Decimal(0))
        self.assertEqual(len(self.sage_records("contact_allocations")), allocations_before + 1)
        with self.assertRaisesRegex(UserError, "already allocated"):
            credit_note.with_user(self.manager_user).action_sage_allocate()

    def test_adjustment_is_sent_as_invoice_by_a_manager(self):
        invoice = self.make_invoice()
        self.send(invoice)
        adjustment = self.make_invoice(
            invoice.partner_id,
            lines=[{"name": "Extra hours", "quantity": 1, "price_unit": 75}],
            reversed_entry_id=invoice.id,
        )
        self.assertEqual(adjustment.sage_document_kind, "adjustment")
        self.send(adjustment, self.manager_user)
        record = self.sage_invoice(adjustment)
        self.assertEqual(record["total_amount"], Decimal("90.00"))
        self.assertEqual(record["contact"]["id"], self.sage_invoice(invoice)["contact"]["id"])
        self.assertEqual(record["invoice_lines"][0]["description"], "Extra hours")
        self.assertEqual(adjustment.sage_state, "sent")
