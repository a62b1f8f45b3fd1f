"""Sage payment status on invoices: applying a pull, write-off protection, voids."""

import logging
from collections import Counter

from odoo import fields, models
from odoo.exceptions import AccessError, UserError

from ..sage_api import payments

_logger = logging.getLogger(__name__)

MANAGER_GROUP = "sage_one_connector.group_sage_financial_manager"


class AccountMove(models.Model):
    # A file per feature, each owned by one engineer: not merged on purpose.
    _inherit = "account.move"  # pylint: disable=consider-merging-classes-inherited

    sage_void_reason = fields.Char("Void reason in Sage", copy=False, readonly=True)
    sage_paid_mirrored_amount = fields.Monetary(
        "Sage payments registered",
        copy=False,
        readonly=True,
        currency_field="currency_id",
        help="Sage's paid total when Odoo last registered a payment from Sage. "
        "Amounts up to it are never registered again.",
    )

    def write(self, vals):
        # Written Off / Paid/Written Off stop every later sync: only financial
        # managers may set them, whatever the client (form, RPC).
        if (
            vals.get("sage_payment_status") in payments.PROTECTED_PAYMENT_STATUSES
            and not self.env.su
            and not self.env.user.has_group(MANAGER_GROUP)
        ):
            raise AccessError(
                self.env._(
                    "Only Sage financial managers can mark invoices Written Off or "
                    "Paid/Written Off."
                )
            )
        return super().write(vals)

    # ------------------------------------------------------------------
    # Written Off / Paid/Written Off (one invoice or many)
    # ------------------------------------------------------------------
    def action_sage_mark_written_off(self):
        return self._sage_mark_written_off("written_off")

    def action_sage_mark_paid_written_off(self):
        return self._sage_mark_written_off("paid_written_off")

    def _sage_mark_written_off(self, status):
        if not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(
                self.env._("Only Sage financial managers can mark invoices as written off.")
            )
        if not self:
            raise UserError(self.env._("Select the invoices to mark."))
        self.check_access("write")
        wrong = self.filtered(lambda move: not move.is_sale_document() or move.state != "posted")
        if wrong:
            raise UserError(
                self.env._(
                    "Only posted customer invoices and credit notes can be marked as written "
                    "off. Remove these from the selection: %(moves)s",
                    moves=", ".join(wrong[:10].mapped("display_name"))
                    + (", …" if len(wrong) > 10 else ""),
                )
            )
        to_mark = self.filtered(lambda move: move.sage_payment_status != status)
        to_mark.write({"sage_payment_status": status})
        label = dict(self._fields["sage_payment_status"]._description_selection(self.env))[status]
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._(
                    "%(count)s invoices marked %(status)s. Later Sage pulls leave them unchanged.",
                    count=len(self),
                    status=label,
                ),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    # ------------------------------------------------------------------
    # Applying a pull
    # ------------------------------------------------------------------
    def _sage_apply_payment_statuses(self, updates, register_payments=False, payment_journal=None):
        """Write Sage's status on these moves; `updates` maps sage_id -> status_update().

        Writes only what differs, so a pull that finds nothing new writes
        nothing. Written-off moves are left alone. Returns a Counter.
        """
        stats = Counter()
        for move in self:
            update = updates.get(move.sage_id)
            if not update:
                continue
            if move.sage_payment_status in payments.PROTECTED_PAYMENT_STATUSES:
                stats["protected"] += 1
                continue
            values = move._sage_payment_values(update)
            if values:
                became_void = values.get("sage_payment_status") == "void"
                move.write(values)
                stats["updated"] += 1
                if became_void:
                    move._sage_flag_voided()
                    stats["voided"] += 1
            if register_payments and not update["voided"]:
                outcome = move._sage_register_sage_payment(update, payment_journal)
                if outcome:
                    stats[outcome] += 1
        return stats

    def _sage_payment_values(self, update):
        """The fields of this move that differ from `update` (empty when in sync)."""
        self.ensure_one()
        values = {}
        if self.sage_payment_status != update["sage_payment_status"]:
            values["sage_payment_status"] = update["sage_payment_status"]
        outstanding = update["sage_outstanding_amount"]
        if outstanding is not None and self.currency_id.compare_amounts(
            self.sage_outstanding_amount, float(outstanding)
        ):
            values["sage_outstanding_amount"] = float(outstanding)
        if (self.sage_last_paid_date or None) != update["sage_last_paid_date"]:
            values["sage_last_paid_date"] = update["sage_last_paid_date"] or False
        void_reason = update["void_reason"] or False
        if (self.sage_void_reason or False) != void_reason:
            values["sage_void_reason"] = void_reason
        return values

    def _sage_flag_voided(self):
        """Tell the people reading the invoice that Sage no longer counts it."""
        self.ensure_one()
        if self.sage_void_reason:
            body = self.env._(
                "Voided in Sage (reason: %(reason)s). Odoo still shows this document as posted: "
                "reverse or cancel it if the void is right.",
                reason=self.sage_void_reason,
            )
        else:
            body = self.env._(
                "Voided in Sage. Odoo still shows this document as posted: reverse or cancel it "
                "if the void is right."
            )
        self.message_post(body=body, subtype_xmlid="mail.mt_note")

    def _sage_register_sage_payment(self, update, journal=None):
        """Register in Odoo what was newly paid in Sage. Returns a stats key or None.

        Each Sage amount is considered once (`sage_paid_mirrored_amount`),
        and capped by what Odoo still owes above Sage's outstanding amount.
        """
        self.ensure_one()
        if self.state != "posted" or not self.is_sale_document():
            return None
        currency = self.currency_id
        total_paid = float(update["total_paid"])
        if currency.compare_amounts(total_paid, self.sage_paid_mirrored_amount) <= 0:
            return None
        amount = currency.round(
            float(
                payments.amount_to_register(
                    update["total_paid"],
                    self.sage_paid_mirrored_amount,
                    self.amount_residual,
                    update["sage_outstanding_amount"] or 0,
                )
            )
        )
        outcome = None
        if not currency.is_zero(amount):
            try:
                with self.env.cr.savepoint():
                    self._sage_create_payment(amount, update, journal)
                outcome = "registered"
            except UserError as error:
                # Leave the mirrored total as it was: the next pull retries.
                _logger.warning(
                    "Sage: could not register the payment of %s on %s: %s",
                    amount,
                    self.display_name,
                    error,
                )
                return "registration_failed"
        self.sage_paid_mirrored_amount = total_paid
        return outcome

    def _sage_create_payment(self, amount, update, journal=None):
        values = {
            "amount": amount,
            "payment_date": update["sage_last_paid_date"] or fields.Date.context_today(self),
            "communication": self.env._(
                "Paid in Sage: %(number)s", number=self.sage_number or self.name
            ),
            "payment_difference_handling": "open",
        }
        if journal:
            values["journal_id"] = journal.id
        wizard = (
            self.env["account.payment.register"]
            .with_company(self.company_id)
            .with_context(active_model="account.move", active_ids=self.ids)
            .create(values)
        )
        wizard.with_context(dont_redirect_to_payments=True).action_create_payments()
