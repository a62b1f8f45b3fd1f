"""Push all to Sage, on the invoice side: what is left to push, and by which payment type.

A document's *payment type* is how the customer is expected to pay: its
preferred payment method if one is set, else its payment terms, else
"Unspecified". The Push-all wizard groups the documents by it so that billing
can be checked and pushed one type at a time.
"""

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.osv import expression

MANAGER_GROUP = "sage_one_connector.group_sage_financial_manager"

CUSTOMER_DOCUMENT_TYPES = ("out_invoice", "out_refund")
# Not in Sage and not being handled: what "Push all" may queue. Uncertain
# documents are left to a financial manager (they may already be in Sage).
UNSENT_SAGE_STATES = ("not_sent", "error", "conflict")

PAYMENT_TYPE_UNSPECIFIED = "none"


class AccountMove(models.Model):
    _inherit = "account.move"  # pylint: disable=consider-merging-classes-inherited

    sage_push_line_ids = fields.One2many(
        "sage.push.batch.line",
        "move_id",
        string="Sage push batches",
        groups=MANAGER_GROUP,
        copy=False,
    )
    sage_payment_type = fields.Char(
        "Payment type",
        compute="_compute_sage_payment_type",
        help="Preferred payment method, else payment terms, else Unspecified: how Push all "
        "to Sage groups the documents.",
    )

    @api.depends("preferred_payment_method_line_id", "invoice_payment_term_id")
    def _compute_sage_payment_type(self):
        labels = {}
        for move in self:
            key = move._sage_payment_type_key()
            if key not in labels:
                labels[key] = self._sage_payment_type_label(key)
            move.sage_payment_type = labels[key]

    # ------------------------------------------------------------------
    # Commits of a batch push
    # ------------------------------------------------------------------
    def _sage_commit(self):
        """Push all applies a whole chunk's results in one transaction.

        ``_sage_apply_push_result`` commits after each document; the batch
        runner sets ``sage_push_defer_commit`` while applying a chunk and
        commits once at the end (after every commit Odoo would read everything
        again). The prepare step, which stores the idempotency ids before any
        request, never carries the flag. A crash before the chunk's commit
        leaves its documents in *sending*: the next run looks them up in Sage.
        """
        if self.env.context.get("sage_push_defer_commit"):
            self.env.flush_all()
            return
        super()._sage_commit()

    def _sage_connection(self):
        """Push all works on one company at a time: its connection is looked up
        once per chunk (``sage_push_connection_id``), not several times per document."""
        context = self.env.context
        if context.get("sage_push_connection_id") and (
            self.company_id.id == context.get("sage_push_company_id")
        ):
            return self.env["sage.connection"].sudo().browse(context["sage_push_connection_id"])
        return super()._sage_connection()

    # ------------------------------------------------------------------
    # Payment types
    # ------------------------------------------------------------------
    def _sage_payment_type_key(self):
        """'method:<id>', 'terms:<id>' or 'none' (see the module docstring)."""
        self.ensure_one()
        return self._sage_payment_type_key_of(
            self.preferred_payment_method_line_id.id, self.invoice_payment_term_id.id
        )

    @api.model
    def _sage_payment_type_key_of(self, method_line_id, payment_term_id):
        if method_line_id:
            return f"method:{method_line_id}"
        if payment_term_id:
            return f"terms:{payment_term_id}"
        return PAYMENT_TYPE_UNSPECIFIED

    @api.model
    def _sage_payment_type_label(self, key):
        kind, _sep, record_id = key.partition(":")
        if kind == "method":
            record = self.env["account.payment.method.line"].sudo().browse(int(record_id)).exists()
            return record.display_name if record else self.env._("Deleted payment method")
        if kind == "terms":
            record = self.env["account.payment.term"].sudo().browse(int(record_id)).exists()
            return record.display_name if record else self.env._("Deleted payment terms")
        return self.env._("Unspecified")

    @api.model
    def _sage_payment_type_domain(self, keys):
        """Domain of the documents whose payment type is one of ``keys``."""
        domains = []
        for key in keys:
            kind, _sep, record_id = key.partition(":")
            if kind == "method":
                domains.append([("preferred_payment_method_line_id", "=", int(record_id))])
            elif kind == "terms":
                domains.append(
                    [
                        ("preferred_payment_method_line_id", "=", False),
                        ("invoice_payment_term_id", "=", int(record_id)),
                    ]
                )
            elif kind == PAYMENT_TYPE_UNSPECIFIED:
                domains.append(
                    [
                        ("preferred_payment_method_line_id", "=", False),
                        ("invoice_payment_term_id", "=", False),
                    ]
                )
        return expression.OR(domains) if domains else expression.FALSE_DOMAIN

    # ------------------------------------------------------------------
    # What Push all works on
    # ------------------------------------------------------------------
    @api.model
    def _sage_unsent_domain(self):
        """Posted customer invoices and credit notes not (yet) in Sage."""
        return [
            ("move_type", "in", CUSTOMER_DOCUMENT_TYPES),
            ("state", "=", "posted"),
            ("sage_state", "in", UNSENT_SAGE_STATES),
            ("sage_id", "=", False),
        ]

    @api.model
    def _sage_removable_draft_domain(self):
        """Draft customer invoices and credit notes never pushed: Remove Invoices deletes them."""
        return [
            ("move_type", "in", CUSTOMER_DOCUMENT_TYPES),
            ("state", "=", "draft"),
            ("sage_state", "!=", "sent"),
            ("sage_id", "=", False),
        ]

    @api.model
    def _sage_check_push_all_rights(self):
        """Push all and Remove Invoices are for financial managers (AccessError otherwise)."""
        if not self.env.su and not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(self.env._("Only financial managers can push all documents to Sage."))

    # ------------------------------------------------------------------
    # Buttons
    # ------------------------------------------------------------------
    def action_sage_open_push_all(self):
        """Open the Push-all wizard: on these documents, or on all of the company's."""
        self._sage_check_push_all_rights()
        if self:
            self.check_access("read")
            companies = self.company_id
            if len(companies) > 1:
                raise UserError(
                    self.env._(
                        "The selection holds documents of several companies (%(companies)s): "
                        "push the documents of one company at a time.",
                        companies=", ".join(companies.mapped("display_name")),
                    )
                )
            company = companies
        else:
            company = self.env.company
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Push all to Sage"),
            "res_model": "sage.push.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_company_id": company.id,
                "default_scope": "selection" if self else "all",
                "default_move_ids": [fields.Command.set(self.ids)],
            },
        }
