from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    sage_connection_ids = fields.One2many("sage.connection", "company_id")
