"""Shared setup of the Send to Sage tests (imported by test_send*.py,
test_write_off*.py, test_push_rights*.py and test_bad_input_send*.py).

Not registered in tests/__init__.py: it holds no test of its own.
"""

import uuid
from decimal import Decimal

from odoo import Command, fields

from .common import SageSandboxCase

# Every field a push may write on a move: a refused push must leave them all.
SAGE_MOVE_FIELDS = (
    "sage_state",
    "sage_id",
    "sage_number",
    "sage_sent_date",
    "sage_last_error",
    "sage_attempts",
    "sage_payment_status",
    "sage_outstanding_amount",
    "sage_idempotency_id",
    "sage_push_generation",
    "sage_sending_since",
    "sage_connection_id",
    "sage_write_off_state",
    "sage_write_off_id",
    "sage_write_off_idempotency_id",
)


class SagePushCase(SageSandboxCase):
    """Sandbox business in GBP, Odoo taxes mapped to Sage rates, helpers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.company_data["company"]
        # What Connect stores from Sage's financial settings (base currency).
        cls.connection.business_currency = "GBP"
        cls.gbp = cls.setup_other_currency("GBP")
        cls.vat20 = cls.env["account.tax"].create(
            {
                "name": "VAT 20% (Sage)",
                "amount": 20,
                "amount_type": "percent",
                "type_tax_use": "sale",
                "company_id": cls.company.id,
                "sage_tax_rate_id": cls.sage_tax_rate("GB_STANDARD").id,
            }
        )
        cls.vat20_included = cls.env["account.tax"].create(
            {
                "name": "VAT 20% included (Sage)",
                "amount": 20,
                "amount_type": "percent",
                "price_include_override": "tax_included",
                "type_tax_use": "sale",
                "company_id": cls.company.id,
                "sage_tax_rate_id": cls.sage_tax_rate("GB_STANDARD").id,
            }
        )
        cls.vat0 = cls.env["account.tax"].create(
            {
                "name": "Zero rated (Sage)",
                "amount": 0,
                "amount_type": "percent",
                "type_tax_use": "sale",
                "company_id": cls.company.id,
                "sage_tax_rate_id": cls.sage_tax_rate("GB_ZERO").id,
            }
        )
        ledgers = cls.connection.ledger_account_ids
        cls.ledger_4000 = ledgers.filtered(lambda lg: lg.nominal_code == "4000")
        cls.ledger_4010 = ledgers.filtered(lambda lg: lg.nominal_code == "4010")
        cls.ledger_4900 = ledgers.filtered(lambda lg: lg.nominal_code == "4900")
        cls.ledger_8100 = ledgers.filtered(lambda lg: lg.nominal_code == "8100")
        cls.revenue_account = cls.company_data["default_account_revenue"]

    # ------------------------------------------------------------------
    # Odoo side
    # ------------------------------------------------------------------
    def make_customer(self, name=None, email=True, **values):
        """A customer with an email nobody else uses (the sandbox outlives a test)."""
        token = uuid.uuid4().hex[:8]
        if email is True:
            email = f"accounts-{token}@customer.example"
        return self.env["res.partner"].create(
            dict(
                {
                    "name": name or f"Customer {token}",
                    "email": email or False,
                    "street": "1 High Street",
                    "city": "Leeds",
                    "zip": "LS1 1AA",
                    "country_id": self.env.ref("base.uk").id,
                },
                **values,
            )
        )

    def make_invoice(
        self, partner=None, lines=None, move_type="out_invoice", post=True, currency=None, **values
    ):
        """A customer document: 2 x 150.00 + 20% VAT (360.00) unless told otherwise."""
        partner = partner or self.make_customer()
        lines = lines or [{"name": "Consulting day", "quantity": 2, "price_unit": 150.0}]
        move = self.env["account.move"].create(
            dict(
                {
                    "move_type": move_type,
                    "partner_id": partner.id,
                    "invoice_date": "2026-01-15",
                    "currency_id": (currency or self.gbp).id,
                    "invoice_line_ids": [
                        Command.create(dict({"tax_ids": [Command.set(self.vat20.ids)]}, **line))
                        for line in lines
                    ],
                },
                **values,
            )
        )
        if post:
            move.action_post()
        return move

    def make_credit_note(self, invoice, quantity=None, post=True):
        """Reverse `invoice` (as Odoo's Credit Note button does), fully or partly."""
        credit_note = invoice._reverse_moves(
            [{"invoice_date": invoice.invoice_date, "ref": f"Reversal of: {invoice.name}"}]
        )
        if quantity is not None:
            credit_note.invoice_line_ids[:1].quantity = quantity
        if post:
            credit_note.action_post()
        return credit_note

    def send(self, moves, user=None):
        user = user or self.manager_user
        return moves.with_user(user).action_sage_send()

    def move_snapshot(self, moves):
        moves.invalidate_recordset()
        return [{name: move[name] for name in SAGE_MOVE_FIELDS} for move in moves]

    # ------------------------------------------------------------------
    # Sage side (the sandbox's store)
    # ------------------------------------------------------------------
    def sage_records(self, collection, business_id=None):
        with self.sandbox.lock:
            return list(
                self.sandbox.state.collection(collection, business_id or self.sage_business_id)
            )

    def sage_invoice(self, move):
        return self.sandbox.state.sales_invoices[move.sage_id]

    def sage_credit_note(self, move):
        return self.sandbox.state.sales_credit_notes[move.sage_id]

    def sage_documents_of(self, move, collection="sales_invoices"):
        """Sage documents carrying `move`'s reference for its customer."""
        contact_ids = {
            link.sage_contact_id for link in move.commercial_partner_id.sudo().sage_contact_link_ids
        }
        return [
            record
            for record in self.sage_records(collection)
            if record["contact"]["id"] in contact_ids and record.get("reference") == move.name
        ]

    def clear_sandbox_faults(self):
        """No random fault and no queued fault left (the sandbox outlives a test)."""
        self.sandbox.set_faults()
        with self.sandbox._fault_lock:
            self.sandbox._fail_queue = []

    def sage_writes(self):
        return self.sandbox.stats()["writes"]

    def sandbox_counts(self):
        return {
            name: len(self.sage_records(name))
            for name in ("contacts", "sales_invoices", "sales_credit_notes", "contact_allocations")
        }

    @staticmethod
    def dec(value):
        return Decimal(str(value)).quantize(Decimal("0.01"))

    def today(self):
        return fields.Date.context_today(self.env["account.move"])
