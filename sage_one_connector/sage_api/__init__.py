"""Sage Business Cloud Accounting API v3.1 client (pure Python, no Odoo imports).

Only relative imports are used inside this package so that it can be imported
either as ``odoo.addons.sage_one_connector.sage_api`` or, in pure tests, as a
top-level ``sage_api`` package with the addon folder on ``sys.path``.
"""

from .client import (
    DEFAULT_API_URL,
    INVOICE_SYNC_ATTRIBUTES,
    SageClient,
    format_timestamp,
    make_idempotency_id,
    to_decimal,
)
from .exceptions import (
    SageAuthError,
    SageConnectionError,
    SageError,
    SageErrorDetail,
    SageForbiddenError,
    SageNotFoundError,
    SageRateLimitError,
    SageReauthorizationRequired,
    SageServerError,
    SageValidationError,
    parse_error_details,
)
from .oauth import SageOAuth

__all__ = [
    "DEFAULT_API_URL",
    "INVOICE_SYNC_ATTRIBUTES",
    "SageAuthError",
    "SageClient",
    "SageConnectionError",
    "SageError",
    "SageErrorDetail",
    "SageForbiddenError",
    "SageNotFoundError",
    "SageOAuth",
    "SageRateLimitError",
    "SageReauthorizationRequired",
    "SageServerError",
    "SageValidationError",
    "format_timestamp",
    "make_idempotency_id",
    "parse_error_details",
    "to_decimal",
]
