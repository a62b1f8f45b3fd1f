import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools.misc import hmac

# How long an administrator has to approve Odoo in Sage after clicking Connect.
STATE_LIFETIME = timedelta(minutes=10)
HMAC_SCOPE = "sage_one_connector.oauth_state"
MAX_STATE_LENGTH = 128

# Why a callback's state is refused (codes returned by `_sage_consume`).
STATE_INVALID = "invalid"
STATE_USED = "used"
STATE_EXPIRED = "expired"
STATE_OTHER_USER = "other_user"
STATE_OTHER_COMPANY = "other_company"


class SageOAuthState(models.Model):
    """One Connect click: the `state` Sage must hand back to the callback.

    The browser only ever sees a random nonce; the database keeps its HMAC,
    the user and company it was issued to, an expiry, and when it was used.
    """

    _name = "sage.oauth.state"
    _description = "Sage authorization attempt"
    _order = "id desc"

    nonce_hash = fields.Char(required=True, index=True, readonly=True)
    user_id = fields.Many2one("res.users", required=True, ondelete="cascade", readonly=True)
    company_id = fields.Many2one("res.company", required=True, ondelete="cascade", readonly=True)
    connection_id = fields.Many2one(
        "sage.connection", required=True, ondelete="cascade", readonly=True
    )
    expires_at = fields.Datetime(required=True, readonly=True)
    used_at = fields.Datetime(readonly=True)

    _sql_constraints = [
        ("nonce_hash_uniq", "UNIQUE(nonce_hash)", "This authorization state already exists."),
    ]

    @api.model
    def _sage_hash(self, nonce):
        return hmac(self.env(su=True), HMAC_SCOPE, nonce)

    @api.model
    def _sage_issue(self, connection):
        """A new single-use nonce bound to the current user and `connection`."""
        nonce = secrets.token_urlsafe(32)
        self.sudo().create(
            {
                "nonce_hash": self._sage_hash(nonce),
                "user_id": self.env.user.id,
                "company_id": connection.company_id.id,
                "connection_id": connection.id,
                "expires_at": fields.Datetime.now() + STATE_LIFETIME,
            }
        )
        return nonce

    @api.model
    def _sage_consume(self, nonce):
        """Validate the state of a callback and mark it used.

        Returns ``(state, None)`` when valid, else ``(empty, reason)`` with
        nothing changed. The row is locked so that two callbacks racing with
        the same state cannot both pass.
        """
        empty = self.browse()
        if not nonce or not isinstance(nonce, str) or len(nonce) > MAX_STATE_LENGTH:
            return empty, STATE_INVALID
        self.env.cr.execute(
            "SELECT id FROM sage_oauth_state WHERE nonce_hash = %s FOR UPDATE",
            (self._sage_hash(nonce),),
        )
        row = self.env.cr.fetchone()
        if not row:
            return empty, STATE_INVALID
        state = self.sudo().browse(row[0])
        state.invalidate_recordset()
        user = self.env.user
        if state.used_at:
            return empty, STATE_USED
        if state.expires_at < fields.Datetime.now():
            return empty, STATE_EXPIRED
        if state.user_id != user:
            return empty, STATE_OTHER_USER
        if (
            state.company_id not in user.company_ids
            or state.connection_id.company_id != state.company_id
        ):
            return empty, STATE_OTHER_COMPANY
        state.used_at = fields.Datetime.now()
        return state, None

    @api.autovacuum
    def _gc_sage_oauth_states(self):
        """Forget attempts a day after they expired."""
        limit = fields.Datetime.now() - timedelta(days=1)
        self.sudo().search([("expires_at", "<", limit)]).unlink()
