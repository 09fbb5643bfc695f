"""The container role through ansible-playbook, as a user runs playbooks/site.yml on localhost.

What only a real playbook run shows: the play recap (changed, failed,
rescued), the task executor's check mode, the precedence of the inventory's
variables over the playbooks', and the wording of the role's failures. Each
test uses a container name and directories of its own, against the loopback
mirror, and tears down with playbooks/teardown.yml.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from conftest import COLLECTIONS_PATH, HOST_PYTHON, ROOT

if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)

from ansible_collections.handmade.containers.plugins.module_utils._container.record import (  # noqa: E402 (needs the path)
    STATE_ROOT,
    process_start_time,
)


class Site:
    """One container's site.yml and teardown.yml runs; every run's output and recap kept."""

    def __init__(self, mirror, workdir):
        self.name = "test-role-%s" % uuid.uuid4().hex[:8]
        self.workdir = workdir
        self.vars = {
            "container_name": self.name,
            "container_command": ["/bin/sleep", "3600"],
            "container_memory": "64M",
            "container_alpine_version": mirror.versions[0],
            "container_alpine_mirror": mirror.url,
            "container_verify_signature": True,
            "container_gpg_key": mirror.key_file,
            "container_gpg_fingerprint": mirror.fingerprint,
            "container_rootfs_root": os.path.join(workdir, "rootfs"),
            "container_download_cache": os.path.join(workdir, "cache"),
        }

    def play(self, playbook="site.yml", check=False, inventory=None, **overrides):
        """Run a playbook with the test's variables (as an inventory, so overridable); return (rc, output, recap)."""
        variables = dict(self.vars, **overrides)
        # As a user's inventory names localhost: its connection and the
        # interpreter (discovery can pick a pyenv shim without one).
        host = dict(variables, ansible_connection="local", ansible_python_interpreter=HOST_PYTHON)
        host.update(inventory or {})
        hosts = {"localhost": host}
        inventory_path = os.path.join(self.workdir, "inventory-%s.json" % uuid.uuid4().hex[:6])
        with open(inventory_path, "w") as handle:
            json.dump({"all": {"hosts": hosts}}, handle)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_RETRY_FILES_ENABLED="0")
        env.pop("ANSIBLE_PYTHON_INTERPRETER", None)
        command = ["ansible-playbook", "-i", inventory_path, os.path.join(ROOT, "playbooks", playbook)]
        if check:
            command += ["--check", "--diff"]
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=600,
                              check=False)
        output = proc.stdout.decode(errors="replace")
        match = re.search(r"^localhost\s+: (.*)$", output, re.MULTILINE)
        recap = dict((key, int(value)) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))) if match else {}
        return proc.returncode, output, recap

    def pid(self):
        with open(os.path.join(STATE_ROOT, self.name, "state.json")) as handle:
            return json.load(handle)["pid"]


@pytest.fixture
def site(alpine_mirror):
    workdir = tempfile.mkdtemp(prefix="handmade-role-test-")
    site = Site(alpine_mirror, workdir)
    yield site
    rc, output, _recap = site.play("teardown.yml")
    shutil.rmtree(workdir, ignore_errors=True)
    assert rc == 0, output
    assert not os.path.exists(os.path.join(STATE_ROOT, site.name))


def test_site_converges_then_changes_nothing(site):
    rc, output, recap = site.play()
    assert rc == 0 and recap["changed"] >= 1 and recap["failed"] == 0, output
    pid = site.pid()
    rc, output, recap = site.play()
    assert rc == 0 and recap["changed"] == 0, output
    assert site.pid() == pid


def test_check_mode_on_a_fresh_host_passes_and_makes_nothing(site):
    rc, output, recap = site.play(check=True)
    assert rc == 0 and recap["failed"] == 0 and recap["changed"] >= 1, output
    assert "would be started once" not in output
    assert not os.path.exists(os.path.join(STATE_ROOT, site.name))
    assert not os.path.exists(os.path.join(site.workdir, "rootfs", site.name))


def test_check_mode_shows_the_recreate_when_a_limit_and_the_environment_change_together(site):
    assert site.play()[0] == 0
    pid = site.pid()
    rc, output, recap = site.play(check=True, container_memory="96M", container_env={"MODE": "b"})
    assert rc == 0 and recap["changed"] == 1, output
    assert "would be started once" not in output, output
    # The diff of the one container task names both changes.
    assert '"MODE": "b"' in output and "100663296" in output, output
    assert site.pid() == pid and process_start_time(pid) is not None


def test_a_release_upgrade_under_a_running_container_fails_no_task(site, alpine_mirror):
    assert site.play()[0] == 0
    pid = site.pid()
    newest = alpine_mirror.versions[-1]
    rc, output, recap = site.play(container_alpine_version=newest)
    assert rc == 0 and recap["failed"] == 0 and recap["rescued"] == 0 and recap["ignored"] == 0, output
    assert "[ERROR]" not in output and "fatal:" not in output, output
    assert site.pid() != pid and process_start_time(pid) is None
    with open("/proc/%d/root/etc/alpine-release" % site.pid()) as handle:
        assert handle.read().strip() == newest


def test_the_inventory_sets_localhost_s_connection_variables(site):
    # The playbooks set none of them: an interpreter the inventory names is
    # the one used, here one that does not exist.
    rc, output, _recap = site.play(inventory={"ansible_python_interpreter": "/nonexistent/python3"})
    assert rc != 0 and "/nonexistent/python3" in output, output


def test_a_failure_names_the_role_s_variables(site):
    rc, output, recap = site.play(container_alpine_version="3.99")
    assert rc != 0 and recap["failed"] == 1, output
    failed = re.search(r"^(?:fatal|failed): \[localhost\].*? => (\{.*\})$", output, re.MULTILINE)
    message = json.loads(failed.group(1))["msg"]
    assert site.name in message and "container_alpine_version" in message, message
    assert "set version" not in message and "fetch:" not in message, message


def test_preflight_names_every_problem_of_the_host_at_once_and_makes_nothing(site):
    rc, output, recap = site.play(container_name="-bad", container_cgroup_parent="system.slice")
    assert rc != 0 and recap["failed"] == 1, output
    assert "invalid container names -bad" in output and "container_cgroup_parent is system.slice" in output, output
    assert "Converge each container" not in output


def test_container_init_makes_a_shell_stop_at_once(site):
    # The role's default command, a shell: as PID 1 it ignores SIGTERM, and
    # only the init makes `stopped` prompt (the stop timeout is 10 s).
    rc, output, _recap = site.play(container_command="/bin/sh", container_init=True)
    assert rc == 0, output
    with open("/proc/%d/cmdline" % site.pid(), "rb") as handle:
        assert handle.read().split(b"\0")[:2] == [b"handmade-init", b"/bin/sh"]
    begun = time.monotonic()
    rc, output, recap = site.play(container_command="/bin/sh", container_init=True, container_state="stopped")
    assert rc == 0 and recap["changed"] == 1, output
    assert time.monotonic() - begun < 8, output
