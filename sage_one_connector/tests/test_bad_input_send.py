"""Bad inputs: each gets a clear message and changes nothing, in Odoo or in Sage."""

from unittest.mock import patch

import psycopg2

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .test_send_common import SagePushCase


@tagged("post_install", "-at_install")
class TestBadInputSend(SagePushCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_2 = cls.setup_other_company(name="Unconnected Co")["company"]
        cls.manager_both = new_test_user(
            cls.env,
            login="sage_manager_both",
            groups="sage_one_connector.group_sage_financial_manager",
            company_id=cls.company.id,
            company_ids=[(6, 0, (cls.company + cls.company_2).ids)],
        )

    def setUp(self):
        super().setUp()
        self.addCleanup(self.clear_sandbox_faults)
        self.clear_sandbox_faults()

    def assertRefused(self, moves, pattern, user=None, method="action_sage_send", error=UserError):
        """`method` raises `error` matching `pattern`; nothing changed anywhere.

        No savepoint around the call: a write made before the refusal would
        show in the snapshot.
        """
        user = user or self.manager_user
        writes = self.sage_writes()
        counts = self.sandbox_counts()
        before = self.move_snapshot(moves)
        links = self.env["sage.contact.link"].sudo().search_count([])
        try:
            getattr(self.env["account.move"].with_user(user).browse(moves.ids), method)()
        except error as exc:
            self.assertRegex(str(exc), pattern)
            message = str(exc)
        else:
            self.fail(f"{method} was not refused")
        self.assertEqual(self.sage_writes(), writes, "Sage received a write")
        self.assertEqual(self.sandbox_counts(), counts)
        self.assertEqual(self.move_snapshot(moves), before, "the move's Sage fields changed")
        self.assertEqual(self.env["sage.contact.link"].sudo().search_count([]), links)
        return message

    # ------------------------------------------------------------------
    # Document type and state
    # ------------------------------------------------------------------
    def test_01_draft_invoice(self):
        self.assertRefused(self.make_invoice(post=False), "post it first")

    def test_02_vendor_bill(self):
        bill = self.make_invoice(
            move_type="in_invoice",
            lines=[{"name": "Paper", "quantity": 1, "price_unit": 10, "tax_ids": []}],
        )
        self.assertRefused(bill, "Only customer invoices and credit notes")

    def test_03_journal_entry(self):
        entry = self.env["account.move"].create(
            {
                "move_type": "entry",
                "line_ids": [
                    Command.create(
                        {"name": "d", "debit": 10, "account_id": self.revenue_account.id}
                    ),
                    Command.create(
                        {
                            "name": "c",
                            "credit": 10,
                            "account_id": self.company_data["default_account_expense"].id,
                        }
                    ),
                ],
            }
        )
        entry.action_post()
        self.assertRefused(entry, "Only customer invoices and credit notes")

    def test_04_cancelled_invoice(self):
        invoice = self.make_invoice()
        invoice.button_draft()
        invoice.button_cancel()
        self.assertRefused(invoice, "post it first")

    def test_05_already_sent(self):
        invoice = self.make_invoice()
        self.send(invoice)
        self.assertRefused(invoice, f"already in Sage \\({invoice.sage_number}\\)")

    def test_06_being_sent_by_someone_else(self):
        invoice = self.make_invoice()
        invoice.write({"sage_state": "sending", "sage_sending_since": fields.Datetime.now()})
        self.assertRefused(invoice, "already being sent")

    def test_06b_row_locked_by_another_transaction(self):
        invoice = self.make_invoice()
        real_execute = type(self.env.cr).execute

        def execute(cr, query, params=None, log_exceptions=True):
            if "FOR NO KEY UPDATE NOWAIT" in str(query) and "account_move" in str(query):
                raise psycopg2.errors.LockNotAvailable("could not obtain lock")
            return real_execute(cr, query, params, log_exceptions)

        with patch.object(type(self.env.cr), "execute", execute):
            self.assertRefused(invoice, "already being sent to Sage by another user")

    # ------------------------------------------------------------------
    # Customer
    # ------------------------------------------------------------------
    def test_07_no_email_and_no_link(self):
        partner = self.make_customer(name="Silent Ltd", email=False)
        self.assertRefused(self.make_invoice(partner), "Silent Ltd has no email address")

    def test_08_several_sage_contacts_with_the_same_email(self):
        partner = self.make_customer()
        with self.sandbox.lock:
            for name in ("Twin One", "Twin Two"):
                self.sandbox.state.create_contact(
                    self.sage_business_id,
                    {
                        "name": name,
                        "contact_type_ids": ["CUSTOMER"],
                        "main_contact_person": {"name": name, "email": partner.email},
                    },
                )
        message = self.assertRefused(
            self.make_invoice(partner), "Several Sage contacts use the email"
        )
        self.assertIn("Twin One", message)
        self.assertIn("Twin Two", message)
        self.assertIn("link the customer", message)

    # ------------------------------------------------------------------
    # Lines, taxes, ledgers, amounts, currency
    # ------------------------------------------------------------------
    def test_09_unmapped_tax(self):
        tax = self.vat20.copy({"name": "Unmapped VAT", "sage_tax_rate_id": False})
        invoice = self.make_invoice(
            lines=[
                {"name": "x", "quantity": 1, "price_unit": 10, "tax_ids": [Command.set(tax.ids)]}
            ]
        )
        self.assertRefused(invoice, "The tax Unmapped VAT has no Sage tax rate")

    def test_10_two_taxes_on_a_line(self):
        invoice = self.make_invoice(
            lines=[
                {
                    "name": "x",
                    "quantity": 1,
                    "price_unit": 10,
                    "tax_ids": [Command.set((self.vat20 + self.vat0).ids)],
                }
            ]
        )
        self.assertRefused(invoice, "several taxes")

    def test_11_sage_tax_rate_no_longer_in_sage(self):
        rate = self.sage_tax_rate("GB_REDUCED")
        tax = self.vat20.copy({"name": "Reduced VAT", "amount": 5, "sage_tax_rate_id": rate.id})
        rate.active = False
        invoice = self.make_invoice(
            lines=[
                {"name": "x", "quantity": 1, "price_unit": 10, "tax_ids": [Command.set(tax.ids)]}
            ]
        )
        self.assertRefused(invoice, "Sage tax rate of the tax Reduced VAT is not available")

    def test_12_no_ledger_for_a_line(self):
        self.connection.default_ledger_id = False
        self.assertRefused(self.make_invoice(), "No Sage ledger for the line “Consulting day”")

    def test_13_currency_not_in_sage(self):
        yen = self.setup_other_currency("JPY", rates=[("2016-01-01", 150.0)])
        self.assertRefused(self.make_invoice(currency=yen), "currency JPY is not available")

    def test_14_zero_amount_invoice(self):
        invoice = self.make_invoice(lines=[{"name": "Free sample", "quantity": 1, "price_unit": 0}])
        self.assertRefused(invoice, "Sage only accepts documents with a positive total")

    def test_15_negative_line(self):
        invoice = self.make_invoice(
            lines=[
                {"name": "Work", "quantity": 1, "price_unit": 100},
                {"name": "Goodwill", "quantity": 1, "price_unit": -20},
            ]
        )
        self.assertRefused(invoice, "“Goodwill” has a negative amount")

    # ------------------------------------------------------------------
    # Rights and companies
    # ------------------------------------------------------------------
    def test_16_team_user_and_credit_note(self):
        invoice = self.make_invoice()
        credit_note = self.make_credit_note(invoice)
        self.assertRefused(
            credit_note, "financial managers", user=self.team_user, error=AccessError
        )

    def test_17_team_user_and_adjustment(self):
        invoice = self.make_invoice()
        adjustment = self.make_invoice(invoice.partner_id, reversed_entry_id=invoice.id)
        self.assertRefused(adjustment, "financial managers", user=self.team_user, error=AccessError)

    def test_18_team_user_and_write_off(self):
        invoice = self.make_invoice()
        self.send(invoice, self.team_user)
        self.assertRefused(
            invoice,
            "financial managers",
            user=self.team_user,
            method="action_sage_write_off",
            error=AccessError,
        )

    def test_19_connection_needs_reconnect(self):
        self.connection.state = "needs_reconnect"
        self.assertRefused(self.make_invoice(), "has expired: a system administrator")

    def test_20_connection_not_connected(self):
        self.connection.state = "not_connected"
        self.assertRefused(self.make_invoice(), "is not connected to Sage")

    def _company_2_invoice(self):
        invoice = (
            self.env["account.move"]
            .with_company(self.company_2)
            .create(
                {
                    "move_type": "out_invoice",
                    "partner_id": self.make_customer().id,
                    "invoice_date": "2026-01-15",
                    "invoice_line_ids": [
                        Command.create({"name": "w", "quantity": 1, "price_unit": 5})
                    ],
                }
            )
        )
        invoice.action_post()
        return invoice

    def test_21_company_not_connected(self):
        invoice = self._company_2_invoice()
        self.assertRefused(
            invoice, "Unconnected Co is not connected to Sage", user=self.manager_both
        )

    def test_22_other_company_invoice(self):
        invoice = self._company_2_invoice()
        self.assertRefused(invoice, "access", user=self.team_user, error=AccessError)

    # ------------------------------------------------------------------
    # Write-off
    # ------------------------------------------------------------------
    def test_23_write_off_of_unsent_invoice(self):
        self.assertRefused(self.make_invoice(), "not in Sage yet", method="action_sage_write_off")

    def test_24_write_off_of_invoice_paid_in_sage(self):
        invoice = self.make_invoice()
        self.send(invoice)
        self.sandbox.record_payment(invoice.sage_id, "360.00")
        self.assertRefused(invoice, "is paid in Sage", method="action_sage_write_off")

    def test_25_write_off_of_invoice_paid_in_odoo(self):
        invoice = self.make_invoice()
        self.send(invoice)
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({})._create_payments()
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertRefused(invoice, "It is paid", method="action_sage_write_off")

    def test_26_write_off_twice(self):
        invoice = self.make_invoice()
        self.send(invoice)
        invoice.with_user(self.manager_user).action_sage_write_off()
        self.assertRefused(invoice, "already written off", method="action_sage_write_off")

    def test_27_write_off_without_bad_debts_ledger(self):
        invoice = self.make_invoice()
        self.send(invoice)
        self.connection.bad_debt_ledger_id = False
        self.assertRefused(invoice, "Bad Debts ledger", method="action_sage_write_off")

    def test_28_write_off_of_a_credit_note(self):
        invoice = self.make_invoice()
        self.send(invoice)
        credit_note = self.make_credit_note(invoice)
        self.send(credit_note)
        self.assertRefused(
            credit_note, "Only posted customer invoices", method="action_sage_write_off"
        )

    # ------------------------------------------------------------------
    # Everything at once
    # ------------------------------------------------------------------
    def test_29_every_problem_of_a_selection_listed_and_nothing_sent(self):
        good = self.make_invoice()
        tax = self.vat20.copy({"name": "Unmapped VAT", "sage_tax_rate_id": False})
        bad = self.make_invoice(
            self.make_customer(name="Mute Ltd", email=False),
            lines=[
                {"name": "a", "quantity": 1, "price_unit": 10, "tax_ids": [Command.set(tax.ids)]},
                {"name": "b", "quantity": 1, "price_unit": -5},
            ],
        )
        draft = self.make_invoice(post=False)
        zero = self.make_invoice(lines=[{"name": "Free", "quantity": 1, "price_unit": 0}])
        message = self.assertRefused(good + bad + draft + zero, "Nothing was sent to Sage")
        for expected in (
            "Mute Ltd has no email address",
            "Unmapped VAT has no Sage tax rate",
            "“b” has a negative amount",
            "positive total",
            "post it first",
        ):
            self.assertIn(expected, message)
        self.assertIn(bad.name, message)
        self.assertNotIn(good.name, message)

    def test_30_link_candidate_of_a_sent_document(self):
        invoice = self.make_invoice()
        self.send(invoice)
        self.assertRefused(invoice, "no Sage document to link", method="action_sage_link_candidate")
