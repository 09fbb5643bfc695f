"""Peak memory of ns_exec's own process while a container prints 1 MB, 64 MB or 1 GB, beside peers without docker.

Each row is one fresh process, run the way tests/integration/conftest.py's
run_module runs a module (``python -m ...ns_exec args.json``, the
arguments in a file as AnsiballZ hands them over), and its peak RSS is the
``ru_maxrss`` that ``wait4`` reports for exactly that process. The command
is the same static busybox ``head -c N /dev/zero`` in every row (busybox's
head writes about 200 MB/s here: it, not the reader, sets the pace):

* ns_exec ``state: run``, default ``output_limit`` (1 MiB per stream);
* ns_exec with ``keep_output: true`` (every byte also written to a file);
* ``subprocess.run(capture_output=True)`` of the same command in a fresh
  ``python3``: what a module that captures everything costs;
* ``sh -c 'head -c N /dev/zero > file'``: the floor, nothing held in memory.

The peak is GNU time's ``%M`` (``ru_maxrss`` from ``wait4``, without GNU
time). It also counts the process's reaped children; here those are the
container's PID 1 (a fork of the module, which execs busybox) and
``head``, neither larger than the module itself.

``--collections`` measures another checkout (for example the code before a
change) with the same rows. Usage (as root):
  python benchmarks/bench_output.py [--sizes 1M,64M,1G] [--collections DIR]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
HOST_PYTHON = os.environ.get("HANDMADE_HOST_PYTHON", sys.executable)
BUSYBOX = "/bin/busybox"
GNU_TIME = os.environ.get("HANDMADE_GNU_TIME", "/usr/bin/time")
MODULE = "ansible_collections.handmade.containers.plugins.modules.ns_exec"
UNITS = {"K": 1000, "M": 1000 ** 2, "G": 1000 ** 3}


def parse_size(text):
    text = text.strip().upper()
    if text[-1:] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


def make_rootfs(parent):
    """A minimal rootfs: static busybox with the applets the rows use, and the mount points."""
    rootfs = os.path.join(parent, "rootfs")
    for directory in ("bin", "proc", "dev", "sys", "tmp", "etc", "root"):
        os.makedirs(os.path.join(rootfs, directory))
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for applet in ("sh", "head"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as handle:
        handle.write("root:x:0:0:root:/root:/bin/sh\n")
    return rootfs


def measure(argv, env=None):
    """Run ``argv`` once; return (seconds, peak RSS in MiB, stdout bytes).

    Under GNU time (``%M``) where it is installed: its own fork is a few
    hundred KiB, where a fork of this Python would add its 25 MiB to every
    row (a process's peak counts the memory it had when it called execve).
    """
    timed = GNU_TIME and os.path.exists(GNU_TIME)
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as peak_file:
        command = [GNU_TIME, "-f", "%M", "-o", peak_file.name] + argv if timed else argv
        started = time.monotonic()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = status  # reaped above
        elapsed = time.monotonic() - started
        peak_kib = int(peak_file.read().split()[-1]) if timed else usage.ru_maxrss
        out.seek(0)
        return elapsed, peak_kib / 1024.0, out.read()


def module_row(collections, rootfs, size, extra):
    args = {"ANSIBLE_MODULE_ARGS": dict({"rootfs": rootfs, "command": ["/bin/head", "-c", str(size), "/dev/zero"],
                                         "_ansible_check_mode": False, "_ansible_diff": False}, **extra)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(args, handle)
    env = dict(os.environ, PYTHONPATH=collections)
    try:
        elapsed, peak, out = measure([HOST_PYTHON, "-m", MODULE, handle.name], env=env)
    finally:
        os.unlink(handle.name)
    try:
        result = json.loads(out.decode())
    except ValueError:
        sys.exit("ns_exec printed no JSON (is ansible importable by %s?): %r" % (HOST_PYTHON, out[:500]))
    note = "rc=%s returned %d chars%s" % (result.get("rc"), len(result.get("stdout", "")),
                                          ", truncated" if result.get("stdout_truncated") else "")
    if result.get("stdout_path"):
        note += ", kept %d bytes" % os.path.getsize(result["stdout_path"])
        for key in ("stdout_path", "stderr_path"):
            os.unlink(result[key])
    if result.get("failed") and result.get("rc") is None:
        note = "failed: %s" % result.get("msg")
    return elapsed, peak, note


def capture_row(size):
    code = ("import subprocess, sys; r = subprocess.run([sys.argv[1], 'head', '-c', sys.argv[2], '/dev/zero'], "
            "capture_output=True); print(len(r.stdout))")
    elapsed, peak, out = measure([HOST_PYTHON, "-c", code, BUSYBOX, str(size)])
    return elapsed, peak, "held %s bytes" % out.decode().strip()


def file_row(size, directory):
    target = os.path.join(directory, "cat-output")
    try:
        elapsed, peak, _out = measure([BUSYBOX, "sh", "-c", "%s head -c %d /dev/zero > %s" % (BUSYBOX, size, target)])
        return elapsed, peak, "wrote %d bytes" % os.path.getsize(target)
    finally:
        os.unlink(target)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="1M,64M,1G", help="output sizes, comma-separated (K, M, G: powers of 1000)")
    parser.add_argument("--collections", default=DEFAULT_COLLECTIONS,
                        help="the collections path whose ns_exec is measured")
    parser.add_argument("--skip-peers", action="store_true", help="only the ns_exec rows")
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_output.py needs root (namespaces, cgroups)")
    parent = tempfile.mkdtemp(prefix="bench-output-", dir="/var/tmp")
    kept = os.path.join(parent, "kept")
    os.mkdir(kept, 0o700)
    try:
        rootfs = make_rootfs(parent)
        print("ns_exec from %s; python %s" % (options.collections, HOST_PYTHON))
        print("%-8s %-44s %9s %10s  %s" % ("output", "process", "seconds", "peak MiB", "note"))
        for size in [parse_size(text) for text in options.sizes.split(",")]:
            rows = [("ns_exec state=run (output_limit 1 MiB)", module_row, (options.collections, rootfs, size, {})),
                    ("ns_exec keep_output=true", module_row,
                     (options.collections, rootfs, size, {"keep_output": True, "output_dir": kept}))]
            if not options.skip_peers:
                rows += [("python subprocess.run(capture_output=True)", capture_row, (size,)),
                         ("sh -c 'head -c N /dev/zero > file'", file_row, (size, parent))]
            for label, row, arguments in rows:
                elapsed, peak, note = row(*arguments)
                print("%-8s %-44s %9.2f %10.1f  %s" % (size_text(size), label, elapsed, peak, note))
                sys.stdout.flush()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def size_text(size):
    for unit in ("G", "M", "K"):
        if size >= UNITS[unit] and size % UNITS[unit] == 0:
            return "%d %sB" % (size // UNITS[unit], unit)
    return "%d B" % size


if __name__ == "__main__":
    main()
