from odoo import fields, models

from ..sage_api import documents


class ResPartner(models.Model):
    _inherit = "res.partner"

    sage_contact_link_ids = fields.One2many(
        "sage.contact.link",
        "partner_id",
        "Sage contacts",
        groups="sage_one_connector.group_sage_accounts_team",
    )

    def _sage_contact_link(self, connection):
        """The link of this partner to a Sage contact of `connection`, if any."""
        self.ensure_one()
        return self.env["sage.contact.link"].search(
            [("connection_id", "=", connection.id), ("partner_id", "=", self.id)], limit=1
        )

    def _sage_link_contact(self, connection, sage_contact_id, sage_reference=None):
        """Remember that this partner is `sage_contact_id` in `connection`'s business."""
        self.ensure_one()
        link = self._sage_contact_link(connection)
        values = {"sage_contact_id": sage_contact_id, "sage_reference": sage_reference or False}
        if link:
            link.write(values)
            return link
        return self.env["sage.contact.link"].create(
            dict(values, connection_id=connection.id, partner_id=self.id)
        )

    def _sage_contact_data(self, email):
        """Plain values of this (commercial) partner for `documents.contact_payload`."""
        self.ensure_one()
        return {
            "name": self.name or self.display_name,
            "email": email,
            "street": self.street,
            "street2": self.street2,
            "city": self.city,
            "zip": self.zip,
            "state": self.state_id.name,
            "country_code": self.country_id.code,
            "vat": self.vat,
            "phone": self.phone,
            "mobile": self.mobile,
        }

    def _sage_contact_reference(self, variant=0):
        """Unique Sage contact reference (max 10 characters) derived from the partner."""
        self.ensure_one()
        return documents.contact_reference(self.name, self.id, variant=variant)
