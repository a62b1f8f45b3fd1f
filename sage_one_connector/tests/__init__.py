from . import test_install
from . import test_job_card
from . import test_payment_pull
