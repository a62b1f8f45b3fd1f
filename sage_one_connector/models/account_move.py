from odoo import api, fields, models

SAGE_STATES = [
    ("not_sent", "Not sent"),
    ("queued", "Queued"),
    ("sending", "Sending"),
    ("sent", "Sent"),
    ("uncertain", "Uncertain"),
    ("error", "Error"),
    ("conflict", "Conflict"),
]

SAGE_PAYMENT_STATUSES = [
    ("unpaid", "Unpaid"),
    ("part_paid", "Part-paid"),
    ("paid", "Paid"),
    ("void", "Void"),
    ("written_off", "Written Off"),
    ("paid_written_off", "Paid/Written Off"),
]


class AccountMove(models.Model):
    _inherit = "account.move"

    sage_state = fields.Selection(
        SAGE_STATES,
        string="Sage status",
        default="not_sent",
        required=True,
        copy=False,
        tracking=True,
        index=True,
    )
    sage_connection_id = fields.Many2one("sage.connection", copy=False, readonly=True)
    sage_id = fields.Char("Sage ID", copy=False, readonly=True, index="btree_not_null")
    sage_number = fields.Char("Sage number", copy=False, readonly=True)
    sage_url = fields.Char("Open in Sage", compute="_compute_sage_url")
    sage_sent_date = fields.Datetime("Sent to Sage", copy=False, readonly=True)
    sage_last_error = fields.Text("Last Sage error", copy=False, readonly=True)
    sage_attempts = fields.Integer("Sage attempts", copy=False, readonly=True)
    sage_payment_status = fields.Selection(
        SAGE_PAYMENT_STATUSES, string="Sage payment status", copy=False, tracking=True
    )
    sage_outstanding_amount = fields.Monetary(
        "Outstanding in Sage", copy=False, readonly=True, currency_field="currency_id"
    )
    sage_last_paid_date = fields.Date("Last paid in Sage", copy=False, readonly=True)

    _sql_constraints = [
        (
            "sage_id_uniq",
            "UNIQUE(sage_connection_id, sage_id)",
            "This Sage document is already linked to another entry.",
        ),
    ]

    @api.depends("sage_id", "sage_connection_id.app_url", "move_type")
    def _compute_sage_url(self):
        for move in self:
            app_url = move.sage_connection_id.app_url
            if move.sage_id and app_url:
                kind = "sales_credit_notes" if move.move_type == "out_refund" else "sales_invoices"
                move.sage_url = f"{app_url.rstrip('/')}/{kind}/{move.sage_id}"
            else:
                move.sage_url = False

    def _sage_after_sent(self):
        """Hook called once documents have reached Sage (same transaction)."""
