"""The collection's own kernel integration tests (tests/vm/run-integration.sh lists them), run
inside each VM, so that no code path is proven on the hybrid host only.

Both VMs run their suite at the same time (tests/vm/run-integration.sh);
each host's test then reports its own VM's outcome and output.
"""

import os
import re
import subprocess

import pytest

testinfra_hosts = ["ansible://all"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RUNTIME_DIR = os.environ.get("HANDMADE_VM_RUNTIME_DIR", os.path.join(ROOT, ".build", "vm"))
# Python under TCG is slow: the whole suite gets this long in each VM.
SUITE_TIMEOUT = int(os.environ.get("HANDMADE_VM_SUITE_TIMEOUT", "3600"))


@pytest.fixture(scope="session")
def suite_runs():
    """Start the suite in every running fleet VM once, and wait for all."""
    names = sorted(name for name in os.listdir(RUNTIME_DIR) if os.path.isfile(os.path.join(RUNTIME_DIR, name, "port")))
    runner = subprocess.run(
        [os.path.join(ROOT, "tests", "vm", "run-integration.sh")] + names,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=SUITE_TIMEOUT, check=False)
    return runner.stdout.decode(errors="replace")


def outcome_counts(output):
    """pytest's final summary line ("== 80 passed, 6 skipped in 95.1s ==") as a dict."""
    summary = [line for line in output.splitlines() if line.startswith("=") and " in " in line]
    assert summary, "no pytest summary line in the VM's output:\n" + output[-8000:]
    return {outcome: int(count) for count, outcome in re.findall(r"(\d+) (\w+)", summary[-1].split(" in ")[0])}


def test_integration_suite_passes_in_the_vm(host, suite_runs):
    name = host.ansible.get_variables()["inventory_hostname"]
    run_dir = os.path.join(RUNTIME_DIR, name)
    # No rc file: the runner stopped before running anything in this VM.
    assert os.path.isfile(os.path.join(run_dir, "integration.rc")), suite_runs
    with open(os.path.join(run_dir, "integration.log")) as log:
        output = log.read()
    with open(os.path.join(run_dir, "integration.rc")) as status:
        assert status.read().strip() == "0", output[-8000:]
    # pytest exits 0 when every test skips: the VM must have run tests, and
    # more of them than it skipped (each skip's reason is in the log, -rs).
    counts = outcome_counts(output)
    passed, skipped = counts.get("passed", 0), counts.get("skipped", 0)
    assert passed > skipped, "the VM passed %d test(s) and skipped %d:\n%s" % (passed, skipped, output[-8000:])
