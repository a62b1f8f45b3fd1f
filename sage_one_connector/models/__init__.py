from . import (
    account_move,
    res_company,
    sage_connection,
    sage_contact_link,
    sage_ledger_mapping,
    sage_reference,
)
