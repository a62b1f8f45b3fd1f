from . import (
    sage_business_select,
    sage_connection_test,
    sage_push_wizard,
)
