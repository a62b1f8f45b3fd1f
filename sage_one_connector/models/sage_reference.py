from odoo import api, fields, models


class SageReferenceMixin(models.AbstractModel):
    """Reference data copied from one Sage business; users pick, never type."""

    _name = "sage.reference.mixin"
    _description = "Sage reference data"
    _order = "name"

    connection_id = fields.Many2one(
        "sage.connection", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    sage_id = fields.Char("Sage ID", required=True, readonly=True)
    name = fields.Char(required=True, readonly=True)
    active = fields.Boolean(
        default=True, help="Cleared when the record disappears from Sage or is hidden in sales."
    )

    _sql_constraints = [
        ("sage_id_uniq", "UNIQUE(connection_id, sage_id)", "This Sage record is already known."),
    ]

    @api.model
    def _sage_sync(self, connection, items, values_of):
        """Create, update and archive records to match `items` from Sage.

        `values_of(item)` maps one Sage item to field values (a pure function).
        Returns the number of records created, updated and archived.
        """
        existing = {
            record.sage_id: record
            for record in self.with_context(active_test=False).search(
                [("connection_id", "=", connection.id)]
            )
        }
        created = updated = 0
        seen = set()
        to_create = []
        for item in items:
            values = dict(values_of(item), active=True)
            seen.add(values["sage_id"])
            record = existing.get(values["sage_id"])
            if not record:
                to_create.append(dict(values, connection_id=connection.id))
                created += 1
            elif any(record[name] != value for name, value in values.items()):
                record.write(values)
                updated += 1
        if to_create:
            self.create(to_create)
        gone = self.browse([r.id for sage_id, r in existing.items() if sage_id not in seen])
        gone = gone.filtered("active")
        gone.write({"active": False})
        return {"created": created, "updated": updated, "archived": len(gone)}


class SageLedgerAccount(models.Model):
    _name = "sage.ledger.account"
    _inherit = ["sage.reference.mixin"]
    _description = "Sage ledger account"
    _order = "nominal_code, name"
    _rec_names_search = ["name", "nominal_code"]

    nominal_code = fields.Char(readonly=True)

    @api.depends("name", "nominal_code")
    def _compute_display_name(self):
        for ledger in self:
            ledger.display_name = (
                f"{ledger.nominal_code} {ledger.name}" if ledger.nominal_code else ledger.name
            )


class SageTaxRate(models.Model):
    _name = "sage.tax.rate"
    _inherit = ["sage.reference.mixin"]
    _description = "Sage tax rate"

    percentage = fields.Float(readonly=True, digits=(16, 4))

    @api.depends("name", "percentage")
    def _compute_display_name(self):
        for rate in self:
            rate.display_name = f"{rate.name} ({rate.percentage:g}%)"


class SageCurrency(models.Model):
    _name = "sage.currency"
    _inherit = ["sage.reference.mixin"]
    _description = "Sage currency"
