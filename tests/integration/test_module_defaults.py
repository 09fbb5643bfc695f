"""module_defaults through the action group handmade.containers.containers (meta/runtime.yml).

One real ``ansible-playbook`` run on localhost, against the loopback Alpine
mirror: each block sets ``module_defaults`` for the group only (never for a
module by name), and its task leaves out the options the group gives, so a
result can only hold those values if the defaults reached the module through
the group. Without the group ansible-playbook refuses the playbook ("could
not resolve the module_defaults group") and every test here fails.

A group's defaults go to every module of the group used in its scope, and a
module refuses options it does not have; the last test pins that down, as
docs/module_defaults.md tells users.
"""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import COLLECTIONS_PATH, HOST_PYTHON

GROUP = "group/handmade.containers.containers"
CGROUP_NAME = "handmade/test-module-defaults-%d" % os.getpid()

PLAYBOOK = """
- name: module_defaults for the containers group
  hosts: localhost
  gather_facts: false
  tasks:
    - name: rootfs_fetch takes its mirror, cache and signature key from the group
      module_defaults:
        %(group)s:
          mirror: "{{ mirror_url }}"
          cache_dir: "{{ workdir }}/cache"
          verify_signature: true
          gpg_key: "{{ mirror_key_file }}"
          gpg_fingerprint: "{{ mirror_fingerprint }}"
      block:
        - name: Fetch with only dest and version given
          handmade.containers.rootfs_fetch:
            dest: "{{ workdir }}/rootfs"
            version: "{{ mirror_version }}"
          register: fetched

    - name: cgroup takes a limit from the group
      module_defaults:
        %(group)s:
          pids_max: 42
      block:
        - name: Make a cgroup with only its name given
          handmade.containers.cgroup:
            name: "{{ cgroup_name }}"
          register: made
      always:
        - name: Remove it
          handmade.containers.cgroup:
            name: "{{ cgroup_name }}"
            state: absent

    - name: ns_exec takes the hostname from the group
      module_defaults:
        %(group)s:
          hostname: from-the-group
      block:
        - name: Run hostname in the fetched rootfs
          handmade.containers.ns_exec:
            rootfs: "{{ workdir }}/rootfs"
            command: [hostname]
          register: ran

    - name: A group default that a module lacks
      module_defaults:
        %(group)s:
          mirror: "{{ mirror_url }}"
      block:
        - name: cgroup refuses the option mirror
          handmade.containers.cgroup:
            name: "{{ cgroup_name }}"
          check_mode: true
          register: refused
          ignore_errors: true

    - name: Write the results for the test
      ansible.builtin.copy:
        dest: "{{ workdir }}/results.json"
        content: "{{ {'fetched': fetched, 'made': made, 'ran': ran, 'refused': refused} | to_json }}"
        mode: "0600"
""" % {"group": GROUP}


@pytest.fixture(scope="module")
def results(alpine_mirror):
    """The registered results of one playbook run (fails with its output if the run fails)."""
    workdir = tempfile.mkdtemp(prefix="test-module-defaults-", dir="/var/tmp")
    try:
        playbook = os.path.join(workdir, "playbook.yml")
        with open(playbook, "w") as handle:
            handle.write(PLAYBOOK)
        extra_vars = os.path.join(workdir, "vars.json")
        with open(extra_vars, "w") as handle:
            json.dump({
                "workdir": workdir,
                "mirror_url": alpine_mirror["url"],
                "mirror_key_file": alpine_mirror["key_file"],
                "mirror_fingerprint": alpine_mirror["fingerprint"],
                "mirror_version": alpine_mirror["versions"][-1],
                "cgroup_name": CGROUP_NAME,
            }, handle)
        env = dict(os.environ)
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
            "ANSIBLE_PYTHON_INTERPRETER": HOST_PYTHON,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        })
        proc = subprocess.run(
            ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", "@" + extra_vars, playbook],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=600, check=False)
        output = proc.stdout.decode(errors="replace")
        assert proc.returncode == 0, "ansible-playbook failed (rc=%d):\n%s" % (proc.returncode, output)
        with open(os.path.join(workdir, "results.json")) as handle:
            found = json.load(handle)
        found["workdir"] = workdir
        yield found
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_rootfs_fetch_gets_mirror_cache_and_key_from_the_group(results, alpine_mirror):
    fetched = results["fetched"]
    assert not fetched.get("failed"), fetched
    # The module's own default mirror is Alpine's CDN, which this machine cannot reach.
    assert fetched["url"].startswith(alpine_mirror["url"] + "/"), fetched["url"]
    assert fetched["signature_verified"] is True, fetched
    cached = os.listdir(os.path.join(results["workdir"], "cache"))
    assert "sha256-" + fetched["checksum"].split(":", 1)[1] in cached, cached


def test_cgroup_gets_a_limit_from_the_group(results):
    made = results["made"]
    assert not made.get("failed"), made
    assert made["name"] == CGROUP_NAME
    # limits holds what the kernel's pids.max reads back after the write.
    assert made["limits"]["pids_max"] == 42, made["limits"]


def test_ns_exec_gets_the_hostname_from_the_group(results):
    ran = results["ran"]
    assert not ran.get("failed"), ran
    assert ran["rc"] == 0, ran
    assert ran["stdout"].strip() == "from-the-group", ran
    assert ran["hostname"] == "from-the-group", ran


def test_a_group_default_reaches_every_module_of_the_group(results):
    # The group's defaults are not filtered by module: a key one module lacks fails that module.
    refused = results["refused"]
    assert refused.get("failed") is True, refused
    assert "Unsupported parameters" in refused["msg"] and "mirror" in refused["msg"], refused["msg"]


def test_nothing_is_left_behind(results):
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        for base in (os.path.join("/sys/fs/cgroup", hierarchy), "/sys/fs/cgroup"):
            assert not os.path.exists(os.path.join(base, CGROUP_NAME)), (base, CGROUP_NAME)
