"""OAuth callback of the Connect button.

Sage redirects the administrator's browser here with `code` and the `state`
issued by `sage.connection.action_sage_connect`. Every way out redirects to a
fixed internal URL (never to one taken from the request) or renders an error
page; a refused callback changes nothing.
"""

import logging

from odoo import http
from odoo.exceptions import UserError
from odoo.http import request

from ..models import sage_oauth_state as oauth_state

_logger = logging.getLogger(__name__)

SETTINGS_URL = "/odoo/action-account.action_account_config"


class SageOAuthController(http.Controller):
    @http.route("/sage_one/oauth/callback", type="http", auth="user", methods=["GET"])
    def sage_oauth_callback(self, state=None, code=None, error=None, **kwargs):
        env = request.env
        if not env.user.has_group("base.group_system"):
            _logger.warning("Sage OAuth callback refused: user %s is not an administrator", env.uid)
            return self._error_page(
                403, env._("Only system administrators can connect Odoo to Sage.")
            )
        state_record, problem = env["sage.oauth.state"]._sage_consume(state)
        if problem:
            _logger.warning("Sage OAuth callback refused: %s state", problem)
            return self._error_page(403, self._state_message(problem))
        connection = state_record.connection_id
        back_url = self._connection_url(connection)
        if error:
            if error == "access_denied":
                message = env._(
                    "You declined to give Odoo access to Sage. Click Connect again when "
                    "you are ready."
                )
            else:
                message = env._("Sage could not authorize Odoo (%(error)s).", error=error[:100])
            return self._error_page(400, message, back_url)
        if not code:
            return self._error_page(400, env._("Sage returned no authorization code."), back_url)
        try:
            wizard = connection._sage_connect_with_code(code)
        except UserError as failure:
            return self._error_page(400, failure.args[0], back_url)
        if wizard:
            return request.redirect(f"/odoo/sage.business.select/{wizard.id}")
        return request.redirect(back_url)

    @staticmethod
    def _connection_url(connection):
        return f"/odoo/sage.connection/{connection.id}"

    @staticmethod
    def _state_message(problem):
        env = request.env
        messages = {
            oauth_state.STATE_USED: env._(
                "This authorization was already used. Click Connect again in the settings."
            ),
            oauth_state.STATE_EXPIRED: env._(
                "This authorization has expired (you have 10 minutes to approve Odoo in "
                "Sage). Click Connect again in the settings."
            ),
            oauth_state.STATE_OTHER_USER: env._(
                "This authorization was started by another user. Click Connect yourself."
            ),
            oauth_state.STATE_OTHER_COMPANY: env._(
                "This authorization was started for a company you cannot access."
            ),
        }
        return messages.get(
            problem,
            env._(
                "This request does not come from a Connect click in this database "
                "(unknown state). Click Connect again in the settings."
            ),
        )

    @staticmethod
    def _error_page(status, message, back_url=SETTINGS_URL):
        env = request.env
        return request.render(
            "sage_one_connector.sage_oauth_error_page",
            {
                "heading": env._("The connection to Sage was not made"),
                "message": message,
                "back_url": back_url,
            },
            status=status,
        )
