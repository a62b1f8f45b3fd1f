from . import (
    account_move,
    account_move_job,
    account_move_payment,
    crm_lead,
    res_company,
    res_partner,
    sage_connection,
    sage_connection_pull,
    sage_contact_link,
    sage_job_card_line,
    sage_ledger_mapping,
    sage_reference,
)
