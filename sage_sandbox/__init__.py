"""Local Sage Business Cloud Accounting API v3.1 sandbox (see README.md).

    from sage_sandbox import SageSandbox
    with SageSandbox() as sb:
        sb.register_app("demo", "secret", ["http://localhost:8069/cb"])
        ...
"""
from .schema import validate_body, validate_response
from .server import SageSandbox
from .store import SageError

__all__ = ["SageError", "SageSandbox", "validate_body", "validate_response"]
