"""An idempotent playbooks/site.yml on localhost, side by side with a playbook of one task.

What an operator waits for when nothing has to change: ``ansible-playbook``
starting, the role's preflight, and one container task that finds the
container running as asked. The floor is a playbook of one task
(``ansible.builtin.ping``) in the same run, on the same inventory; the
target is site.yml at most 1.5 times the floor. A playbook of the one
``handmade.containers.container`` task shows what the preflight adds.

The container comes from the offline test mirror (tests/fixtures), with the
role's defaults otherwise, and is removed afterwards (playbooks/teardown.yml).
Every run uses pipelining (ANSIBLE_PIPELINING=True), as a user's ansible.cfg
would set it.

With --fleet, the same site.yml over SSH on the two QEMU VMs of the fleet
(cgroup v1 and v2, tests/vm/vm.sh), both at once: the first converge
beside the idempotent ones. The target there: the idempotent converge no
slower than the first.

Usage (as root): scripts/bench.sh playbook   or   python benchmarks/bench_playbook.py [--runs N] [--fleet]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
HOST_PYTHON = os.environ.get("HANDMADE_HOST_PYTHON", "/usr/bin/python3")
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))

import alpine_mirror  # noqa: E402 (needs the path above)

MIRROR_CACHE = os.path.join(os.environ.get("HANDMADE_DEV_CACHE", "/var/cache/handmade-containers-dev"), "mirror")
TARGET_RATIO = 1.5

ONE_TASK = """
- name: One task
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""

CONTAINER_TASK = """
- name: The container task alone
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Converge the container
      handmade.containers.container:
        name: "{{ container_name }}"
        rootfs: "{{ container_rootfs_root }}/{{ container_name }}"
        fetch:
          version: "{{ container_alpine_version }}"
          mirror: "{{ container_alpine_mirror }}"
          verify_signature: true
          gpg_key: "{{ container_gpg_key }}"
          gpg_fingerprint: "{{ container_gpg_fingerprint }}"
          cache_dir: "{{ container_download_cache }}"
        cgroup_parent: handmade
        memory: "{{ container_memory }}"
        cpus: "{{ container_cpus }}"
        pids_max: "{{ container_pids_max }}"
        hostname: "{{ container_name }}"
"""


def playbook_runner(workdir, mirror, hosts=None, version=None):
    """``run(playbook) -> (seconds, output)`` on localhost, or on ``hosts`` (name -> connection variables)."""
    inventory = os.path.join(workdir, "inventory.json")
    variables = {
        "container_name": "bench-playbook-%d" % os.getpid(),
        "container_alpine_version": version or mirror["versions"][-1], "container_alpine_mirror": mirror["url"],
        "container_gpg_key": mirror["key_file"], "container_gpg_fingerprint": mirror["fingerprint"],
        "container_rootfs_root": os.path.join(workdir, "rootfs"),
        "container_download_cache": os.path.join(workdir, "cache"),
        # The role's defaults, spelled out for the one-task playbook.
        "container_memory": "512M", "container_cpus": 0.5, "container_pids_max": 2048,
    }
    if hosts is None:
        hosts = {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": HOST_PYTHON}}
    # The group site.yml targets when the inventory has it.
    with open(inventory, "w") as handle:
        json.dump({"all": {"vars": variables, "children": {"containers": {"hosts": hosts}}}}, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_PIPELINING="True",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_TIMEOUT="120", ANSIBLE_FORKS="4")

    def run(playbook):
        started = time.perf_counter()
        proc = subprocess.run(["ansible-playbook", "-i", inventory, playbook], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=env, check=False)
        elapsed = time.perf_counter() - started
        output = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            raise SystemExit("%s failed (rc %d):\n%s" % (playbook, proc.returncode, output))
        return elapsed, output
    return run


def timed(run, playbook, runs, unchanged=True):
    times = []
    for _run in range(runs):
        elapsed, output = run(playbook)
        if unchanged and "changed=0" not in output:
            raise SystemExit("%s changed something on an unchanged run:\n%s" % (playbook, output))
        times.append(elapsed)
    return statistics.median(times), min(times), max(times)


VM_SCRIPT = os.path.join(ROOT, "tests", "vm", "vm.sh")
FLEET = (("bench-fleet-v1", "v1"), ("bench-fleet-v2", "v2"))


def fleet(info, runs):
    """The first and the idempotent converges of site.yml on both fleet VMs at once."""
    image = subprocess.run([os.path.join(ROOT, "tests", "vm", "build-image.sh")], stdout=subprocess.PIPE,
                           check=True).stdout.decode().strip().splitlines()[-1]
    workdir = tempfile.mkdtemp(prefix="handmade-bench-fleet-")
    env = dict(os.environ, HANDMADE_VM_RUNTIME_DIR=os.path.join(workdir, "vm"))
    hosts = {}
    try:
        for name, layout in FLEET:
            port = subprocess.run([VM_SCRIPT, "start", name, layout], stdout=subprocess.PIPE, env=env,
                                  check=True).stdout.decode().split()[-1]
            hosts[name] = {"ansible_host": "127.0.0.1", "ansible_port": int(port), "ansible_user": "root",
                           "ansible_ssh_private_key_file": os.path.join(image, "id_ed25519"),
                           "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                           "ansible_python_interpreter": "/usr/bin/python3"}
        subprocess.run([VM_SCRIPT, "wait"] + [name for name, _layout in FLEET], env=env, check=True)
        with alpine_mirror.serving(info["root"]) as server:
            for name, _layout in FLEET:
                with open(info["key_file"], "rb") as key:
                    subprocess.run([VM_SCRIPT, "ssh", name, "cat > /root/bench-mirror.asc"], stdin=key, env=env,
                                   check=True)
            port = server.server_address[1]
            mirror = dict(info, url="http://10.0.2.2:%d" % port, key_file="/root/bench-mirror.asc")
            # A branch, as molecule/fleet converges it: each run asks the mirror for its newest release.
            run = playbook_runner(workdir, mirror, hosts, version=info["versions"][-1].rsplit(".", 1)[0])
            site = os.path.join(ROOT, "playbooks", "site.yml")
            try:
                first, _output = run(site)
                again = timed(run, site, runs)
            finally:
                run(os.path.join(ROOT, "playbooks", "teardown.yml"))
    finally:
        subprocess.run([VM_SCRIPT, "stop"] + [name for name, _layout in FLEET], env=env, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    print("site.yml on the fleet (cgroup v1 and v2 VMs under TCG, both at once), %d idempotent runs:" % runs)
    print("  %-56s %7.1f s" % ("first converge (fetch, cgroup, start)", first))
    print("  %-56s %7.1f s  (%.1f-%.1f)" % ("idempotent converge, median", again[0], again[1], again[2]))
    print("idempotent / first: %.2fx (target: at most 1.0x) %s"
          % (again[0] / first, "met" if again[0] <= first else "NOT met"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--fleet", action="store_true", help="on the two fleet VMs over SSH instead of localhost")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the role makes namespaces, mounts and cgroups")
    info = alpine_mirror.build(MIRROR_CACHE)
    if args.fleet:
        fleet(info, args.runs)
        return
    workdir = tempfile.mkdtemp(prefix="handmade-bench-playbook-")
    one_task = os.path.join(workdir, "one-task.yml")
    container_task = os.path.join(workdir, "container-task.yml")
    for path, text in ((one_task, ONE_TASK), (container_task, CONTAINER_TASK)):
        with open(path, "w") as handle:
            handle.write(text)
    site = os.path.join(ROOT, "playbooks", "site.yml")
    with alpine_mirror.serving(info["root"]) as server:
        run = playbook_runner(workdir, dict(info, url=server.url))
        try:
            first, _output = run(site)
            figures = [
                ("one-task playbook (ansible.builtin.ping), the floor", timed(run, one_task, args.runs)),
                ("site.yml, idempotent (preflight + container task)", timed(run, site, args.runs)),
                ("one container task alone, idempotent", timed(run, container_task, args.runs)),
            ]
        finally:
            run(os.path.join(ROOT, "playbooks", "teardown.yml"))
            shutil.rmtree(workdir, ignore_errors=True)
    floor = figures[0][1][0]
    print("ansible-playbook on localhost, %d runs each, median (min-max) wall time:" % args.runs)
    print("  %-56s %7.0f ms" % ("site.yml, first run (fetch, cgroup, start)", first * 1000))
    for label, (median, low, high) in figures:
        print("  %-56s %7.0f ms  (%.0f-%.0f)  %.2fx the floor"
              % (label, median * 1000, low * 1000, high * 1000, median / floor))
    ratio = figures[1][1][0] / floor
    print("site.yml idempotent / one-task playbook: %.2fx (target: at most %.1fx) %s"
          % (ratio, TARGET_RATIO, "met" if ratio <= TARGET_RATIO else "NOT met"))


if __name__ == "__main__":
    main()
