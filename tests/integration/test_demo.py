"""The main job, playbooks/demo.yml, as scripts/demo.sh runs it against the loopback mirror.

Every claim of its table must hold, and its last words must be true: a
container it removed gets no nsenter line, one it keeps gets a line that
enters the live container.
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import COLLECTIONS_PATH, ROOT

DEMO = os.path.join(ROOT, "playbooks", "demo.yml")


def _demo(mirror, workdir, keep):
    report = os.path.join(workdir, "report-%s.txt" % keep)
    command = ["ansible-playbook", DEMO, "-e", "keep=%s" % keep, "-e", "demo_report=%s" % report,
               "-e", "mirror=%s" % mirror.url, "-e", "alpine_version=%s" % mirror.versions[-1].rsplit(".", 1)[0],
               "-e", "verify_signature=true", "-e", "gpg_key=%s" % mirror.key_file,
               "-e", "gpg_fingerprint=%s" % mirror.fingerprint, "-e", "download_cache=%s" % workdir]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_CALLBACK_RESULT_FORMAT="yaml")
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=900,
                          check=False)
    output = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, output
    with open(report) as handle:
        return handle.read()


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="handmade-demo-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_demo_proves_every_claim_and_says_the_container_is_gone(alpine_mirror, workdir):
    report = _demo(alpine_mirror, workdir, keep=False)
    assert " NO\n" not in report, report
    epilogue = report.strip().splitlines()[-1]
    assert "was removed" in epilogue and "nsenter" not in epilogue, epilogue


def test_a_kept_demo_container_gets_an_nsenter_line_that_enters_it(alpine_mirror, workdir):
    try:
        report = _demo(alpine_mirror, workdir, keep=True)
        epilogue = report.strip().splitlines()[-1]
        line = re.search(r"(nsenter --target (\d+) .*?/bin/sh)", epilogue)
        assert line, epilogue
        entered = subprocess.run(line.group(1).split() + ["-c", "hostname"], stdout=subprocess.PIPE, check=False)
        assert entered.stdout.decode().strip() == "mycontainer", entered
    finally:
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_LOCALHOST_WARNING="false")
        subprocess.run(["ansible-playbook", os.path.join(ROOT, "playbooks", "teardown.yml"),
                        "-e", "container_name=handmade-demo"], env=env, stdout=subprocess.DEVNULL, check=True)
