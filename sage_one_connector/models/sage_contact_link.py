from odoo import fields, models


class SageContactLink(models.Model):
    """Which Sage contact stands for an Odoo partner in one Sage business."""

    _name = "sage.contact.link"
    _description = "Sage contact link"
    _rec_name = "partner_id"

    connection_id = fields.Many2one(
        "sage.connection", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    partner_id = fields.Many2one("res.partner", required=True, ondelete="cascade", index=True)
    sage_contact_id = fields.Char("Sage contact ID", required=True)
    sage_reference = fields.Char("Sage contact reference")

    _sql_constraints = [
        (
            "partner_connection_uniq",
            "UNIQUE(connection_id, partner_id)",
            "This customer is already linked to a Sage contact for this business.",
        ),
    ]
