from odoo import fields, models


class AccountMove(models.Model):
    """Customer invoices generated from the job card of a CRM lead."""

    # A per-feature extension on purpose (the project keeps features apart).
    _inherit = "account.move"  # pylint: disable=consider-merging-classes-inherited

    sage_lead_id = fields.Many2one(
        "crm.lead",
        string="Job (lead)",
        copy=False,
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="The CRM lead whose job card this invoice was generated from.",
    )

    def _sage_after_sent(self):
        result = super()._sage_after_sent()
        job_invoices = self.filtered(
            lambda move: move.move_type == "out_invoice" and move.sage_lead_id
        )
        if job_invoices:
            job_invoices.sage_lead_id._sage_complete_invoicing(job_invoices)
        return result
