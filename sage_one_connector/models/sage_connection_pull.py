"""Payments back from Sage: which documents changed, read incrementally.

A pull asks Sage only for what changed since the watermark (the start of the
last successful pull, minus a five-minute overlap for clock skew): sales
invoices, sales credit notes (only once this connection has pushed one),
customer receipts and allocations. Receipts and allocations name the
documents they paid; those the document feeds did not already bring back are
re-read one by one. The cost of a pull therefore follows the number of
changes in Sage, never the number of invoices pushed.
"""

import itertools
import logging
import threading
from collections import Counter

from odoo import api, fields, models, modules
from odoo.exceptions import AccessError, UserError
from odoo.tools import split_every

from ..sage_api import payments
from ..sage_api.exceptions import SageError, SageNotFoundError

_logger = logging.getLogger(__name__)

PULL_GROUP = "sage_one_connector.group_sage_accounts_team"
# sage_id values per `IN (...)` search when matching Sage documents to moves.
MATCH_CHUNK = 1000


class SageConnection(models.Model):
    _inherit = "sage.connection"

    sage_payments_pulled_until = fields.Datetime(
        "Payments pulled up to",
        readonly=True,
        copy=False,
        help="Start of the last successful payment pull. The next pull asks Sage for the "
        "documents changed since then (minus a five-minute overlap).",
    )
    sage_payments_last_pull = fields.Datetime("Last payment pull", readonly=True, copy=False)
    sage_payments_pull_summary = fields.Char("Last pull result", readonly=True, copy=False)
    sage_payments_pull_error = fields.Text("Payment pull error", readonly=True, copy=False)
    sage_register_payments = fields.Boolean(
        "Register payments in Odoo",
        default=False,
        help="When a document is paid in Sage, also register the payment on the Odoo invoice "
        "and reconcile it, so that Odoo's own payment status follows Sage. Each amount paid "
        "in Sage is registered once.",
    )
    sage_payment_journal_id = fields.Many2one(
        "account.journal",
        "Payment journal",
        check_company=True,
        domain="[('type', 'in', ('bank', 'cash')), ('company_id', '=', company_id)]",
        help="Journal of the payments registered from Sage. Empty: the journal Odoo proposes "
        "when registering a payment.",
    )

    # ------------------------------------------------------------------
    # Entry points
    # ------------------------------------------------------------------
    def action_sage_pull_payments(self):
        """Button and menu: pull payment statuses from Sage now.

        Without records (the Sage menu), pulls the connections of the
        companies selected in the company switcher.
        """
        if not self.env.user.has_group(PULL_GROUP):
            raise AccessError(
                self.env._("Only the Sage accounts team can pull payments from Sage.")
            )
        if self:
            self.check_access("read")
            connections = self
        else:
            connections = self.search([("company_id", "in", self.env.companies.ids)])
        connections = connections.filtered(lambda c: c.state == "connected")
        if not connections:
            raise UserError(
                self.env._(
                    "No connected Sage business: connect the company to Sage before pulling "
                    "payments."
                )
            )
        results = [
            (connection, *connection._sage_as_system()._sage_pull_payments_safely())
            for connection in connections
        ]
        failed = any(not done for _connection, done, _message in results)
        messages = [message for _connection, done, message in results if not done or not failed]
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "danger" if failed else "success",
                "sticky": failed,
                "title": self.env._("Sage payment pull failed")
                if failed
                else self.env._("Payments pulled from Sage"),
                "message": "\n".join(messages),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    @api.model
    def _cron_sage_pull_payments(self):
        """Scheduled pull: every connected business, one transaction each."""
        connections = self.sudo().search(
            [("state", "=", "connected"), ("business_id", "!=", False)]
        )
        for connection in connections:
            connection._sage_as_system()._sage_pull_payments_safely()
            if _can_commit():
                # One business's statuses and watermark are kept even if a
                # later business fails or the worker is killed.
                self.env.cr.commit()  # pylint: disable=invalid-commit

    # ------------------------------------------------------------------
    # The pull
    # ------------------------------------------------------------------
    def _sage_as_system(self):
        """A pull is system work: it reads and writes every pushed document of
        the business, whoever started it, in the connection's company."""
        self.ensure_one()
        return self.sudo().with_company(self.company_id)

    def _sage_pull_payments_safely(self):
        """Pull, or record why it failed on the connection.

        Returns (done, message): the pull summary, or why nothing was pulled.
        """
        self.ensure_one()
        if not self._sage_lock_for_pull():
            # The cron and a button (or two buttons) at the same time: the
            # second would only redo the first one's work.
            _logger.info("Sage connection %s: a payment pull is already running", self.id)
            return False, self.env._(
                "%(connection)s: a payment pull is already running; try again in a minute.",
                connection=self.display_name,
            )
        try:
            with self.env.cr.savepoint():
                self._sage_pull_payments()
            return True, self.sage_payments_pull_summary
        except (SageError, UserError) as error:
            _logger.warning("Sage connection %s: payment pull failed: %s", self.id, error)
            self._sage_record_pull_error(str(error))
        except Exception as error:  # one business must not stop the others
            _logger.exception("Sage connection %s: payment pull crashed", self.id)
            self._sage_record_pull_error(
                self.env._("Unexpected error: %(error)s", error=repr(error))
            )
        return False, self.sage_payments_pull_error

    def _sage_lock_for_pull(self):
        """Lock the connection row for this transaction, unless another one holds it."""
        self.env.cr.execute(
            "SELECT id FROM sage_connection WHERE id = %s FOR NO KEY UPDATE SKIP LOCKED",
            (self.id,),
        )
        return bool(self.env.cr.fetchone())

    def _sage_pull_payments(self):
        """Read what changed in Sage since the watermark and update the moves.

        Raises SageError/UserError; the caller rolls back. Returns a Counter.
        """
        self.ensure_one()
        # The watermark is our clock at the start: Sage's clock is not exposed
        # by the client, and the overlap absorbs a few minutes of skew.
        run_started_at = fields.Datetime.now()
        since = payments.pull_since(self.sage_payments_pulled_until, self.create_date)
        client = self._sage_client()
        document_feeds = [
            client.iter_sales_invoices_changed_since(
                since, attributes=payments.DOCUMENT_PULL_ATTRIBUTES
            )
        ]
        if self._sage_has_pushed("out_refund"):
            document_feeds.append(
                client.iter_sales_credit_notes_changed_since(
                    since, attributes=payments.DOCUMENT_PULL_ATTRIBUTES
                )
            )
        updates = payments.merge_status_updates(*document_feeds)
        paid_ids = payments.allocated_artefact_ids(
            itertools.chain(
                client.iter_contact_payments_changed_since(
                    since, attributes=payments.ALLOCATION_PULL_ATTRIBUTES
                ),
                client.iter_contact_allocations_changed_since(
                    since, attributes=payments.ALLOCATION_PULL_ATTRIBUTES
                ),
            )
        )
        stats = Counter()
        # Paid without their own updated_at moving (Sage does not document
        # whether it moves): re-read only the ones pushed from Odoo.
        for move in self._sage_moves_by_sage_id(paid_ids - updates.keys()):
            update = self._sage_reread_document(client, move)
            if update:
                updates[update["sage_id"]] = update
                stats["reread"] += 1
        moves = self._sage_moves_by_sage_id(updates.keys())
        stats.update(
            moves._sage_apply_payment_statuses(
                updates,
                register_payments=self.sage_register_payments,
                payment_journal=self.sage_payment_journal_id,
            )
        )
        stats["changes_in_sage"] = len(updates)
        stats["sage_calls"] = client.calls
        self.write(
            {
                "sage_payments_pulled_until": run_started_at,
                "sage_payments_last_pull": fields.Datetime.now(),
                "sage_payments_pull_summary": self._sage_pull_summary(stats),
                "sage_payments_pull_error": False,
            }
        )
        _logger.info(
            "Sage connection %s: payment pull since %s: %s changed documents, %s updated, "
            "%s Sage calls",
            self.id,
            since,
            stats["changes_in_sage"],
            stats["updated"],
            stats["sage_calls"],
        )
        return stats

    def _sage_has_pushed(self, move_type):
        """Whether this connection has pushed a document of this type (one indexed row)."""
        return bool(
            self.env["account.move"].search_count(
                [
                    ("sage_connection_id", "=", self.id),
                    ("sage_id", "!=", False),
                    ("move_type", "=", move_type),
                ],
                limit=1,
            )
        )

    def _sage_moves_by_sage_id(self, sage_ids):
        """The moves of this connection among `sage_ids` (unknown ids are ignored)."""
        Move = self.env["account.move"]
        moves = Move.browse()
        for chunk in split_every(MATCH_CHUNK, sorted(sage_ids), list):
            moves |= Move.search([("sage_connection_id", "=", self.id), ("sage_id", "in", chunk)])
        return moves

    def _sage_reread_document(self, client, move):
        reader = (
            client.get_sales_credit_note
            if move.move_type == "out_refund"
            else client.get_sales_invoice
        )
        try:
            item = reader(move.sage_id, attributes=payments.DOCUMENT_PULL_ATTRIBUTES)
        except SageNotFoundError:
            # Not in this business any more; the documents feed reports voids.
            _logger.warning(
                "Sage connection %s: %s (Sage %s) not found when re-read",
                self.id,
                move.display_name,
                move.sage_id,
            )
            return None
        return payments.status_update(item)

    def _sage_pull_summary(self, stats):
        summary = self.env._(
            "%(changed)s documents changed in Sage, %(updated)s invoices updated in Odoo "
            "(%(calls)s Sage calls).",
            changed=stats["changes_in_sage"],
            updated=stats["updated"],
            calls=stats["sage_calls"],
        )
        if stats["voided"]:
            summary += " " + self.env._("%(count)s voided in Sage.", count=stats["voided"])
        if stats["protected"]:
            summary += " " + self.env._(
                "%(count)s written off in Odoo left unchanged.", count=stats["protected"]
            )
        if stats["registered"]:
            summary += " " + self.env._(
                "%(count)s payments registered in Odoo.", count=stats["registered"]
            )
        if stats["registration_failed"]:
            summary += " " + self.env._(
                "%(count)s payments could not be registered in Odoo (see the invoices).",
                count=stats["registration_failed"],
            )
        return summary

    def _sage_record_pull_error(self, message):
        """Show the failure on the connection, with a note when pulls start failing
        (not one every 15 minutes while Sage stays unreachable)."""
        self.ensure_one()
        was_failing = bool(self.sage_payments_pull_error)
        self.write({"sage_payments_pull_error": message})
        if not was_failing:
            self.message_post(
                body=self.env._("Pulling payments from Sage failed: %(error)s", error=message),
                subtype_xmlid="mail.mt_note",
            )


def _can_commit():
    """Commit in the cron only: never inside tests."""
    return not getattr(threading.current_thread(), "testing", False) and not (
        modules.module.current_test
    )
