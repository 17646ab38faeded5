"""pytest set-up for the unit tests and for nbval's notebook runs.

* Offline and CPU-only, the same settings as ``python -m course_utils.notebooks``.
* A network guard in this process and in every notebook kernel: connections to anything
  but loopback are blocked and logged, and the run fails if the log is not empty.
* stderr (warnings, logging, text progress bars) is never compared by nbval.
"""

import os
import tempfile
from pathlib import Path

from course_utils.notebooks import TEST_ENV
from course_utils.runtime import install_network_guard

os.environ.update(TEST_ENV)
os.environ.setdefault("COURSE_NETWORK_GUARD", str(Path(tempfile.gettempdir()) / f"course-network-{os.getpid()}.log"))
GUARD_LOG = Path(os.environ["COURSE_NETWORK_GUARD"])
IS_CONTROLLER = "PYTEST_XDIST_WORKER" not in os.environ
if IS_CONTROLLER:
    GUARD_LOG.unlink(missing_ok=True)
install_network_guard(str(GUARD_LOG))


def pytest_collectstart(collector):
    if collector.path is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += ("stderr",)


def pytest_sessionfinish(session, exitstatus):
    if IS_CONTROLLER and GUARD_LOG.exists() and GUARD_LOG.read_text().strip():
        print(f"\nNetwork access was attempted during the tests:\n{GUARD_LOG.read_text()}")
        session.exitstatus = 1
