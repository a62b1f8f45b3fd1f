"""The browser tours (``sage_one_connector/tests/test_tours.py``) in headless Chromium.

Runs Odoo's own test runner with ``--test-tags sage_tours`` on a copy of the
template database and checks that the three tours ran and succeeded, and that
each end state was saved as a screenshot in ``test-output/screenshots/``.
Without Chromium the test is skipped, unless ``CI=true``: then it fails (and so
do the tours themselves).
"""

import re
import shutil
import time

from odoo_system import OUTPUT_DIR, REPO_ROOT, free_port, require, run_odoo_command

TOURS = {
    "test_team_user_sends_an_invoice_and_sees_the_sage_number": ["sage_send_invoice_tour"],
    "test_manager_pushes_one_payment_type_and_reads_the_completion_notice": [
        "sage_push_all_tour",
        "sage_push_all_done_tour",
    ],
    "test_lead_goes_from_generate_invoice_to_completed": ["sage_job_to_completed_tour"],
}
SCREENSHOTS = REPO_ROOT / "test-output" / "screenshots"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_browser_tours(make_db, report):
    require(chromium(), "Chromium is not installed: the browser tours cannot run")
    db = make_db("tours")
    started = time.time()
    log_path = OUTPUT_DIR / f"{db}-tours.log"
    try:
        run_odoo_command(
            db,
            [
                "--test-enable",
                "--test-tags",
                "sage_tours",
                "--stop-after-init",
                f"--http-port={free_port()}",
                "--max-cron-threads=0",
                "--log-level=test",
            ],
            log_path,
        )
    except RuntimeError:
        pass  # the log says why; the checks below report it
    log = log_path.read_text(encoding="utf-8", errors="replace")
    summary = re.findall(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests when loading", log)
    failures = re.findall(r"(?:FAIL|ERROR): (TestSageTours\.\w+)", log)
    assert summary, f"the Odoo test runner did not report; see {log_path}"
    failed, errors, total = (int(value) for value in summary[-1])
    assert (failed, errors) == (0, 0), f"{failures}; see {log_path}"
    assert total == len(TOURS), f"{total} tests ran, expected {len(TOURS)}; see {log_path}"
    for test, tours in TOURS.items():
        assert f"Starting TestSageTours.{test}" in log, test
        for tour in tours:
            assert f"TOUR {tour} SUCCEEDED" in log, f"{tour} did not succeed; see {log_path}"
            shot = SCREENSHOTS / f"{tour}.png"
            assert shot.is_file() and shot.stat().st_mtime >= started, f"no new {shot}"
            assert shot.read_bytes()[:8] == PNG_SIGNATURE and shot.stat().st_size > 10_000, shot
    report(
        f"browser: {len(TOURS)} tests, {sum(len(t) for t in TOURS.values())} tours succeeded "
        f"in Chromium, screenshots in {SCREENSHOTS.relative_to(REPO_ROOT)}/"
    )
