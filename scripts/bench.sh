#!/usr/bin/env bash
# Every benchmark (benchmarks/bench_*.py), one after another so they do not
# compete for the CPUs, each printing its figures side by side with the peers
# it measures against (runc, bubblewrap, unshare, cgexec, GNU tar). As root,
# with the development venv's Python and the collection importable as
# ansible_collections.handmade.containers. Arguments pick benchmarks by name:
# `scripts/bench.sh launch` runs benchmarks/bench_launch*.py only.
source "$(dirname "$0")/common.sh"
require_root bench
apt_install runc bubblewrap cgroup-tools util-linux hyperfine busybox-static gnupg tar gzip tini
ensure_venv
ensure_collection_path
export PYTHONPATH=$BUILD/collections${PYTHONPATH:+:$PYTHONPATH}
cd "$ROOT"

benchmarks=()
if [ $# -eq 0 ]; then
    benchmarks=(benchmarks/bench_*.py)
else
    for name in "$@"; do benchmarks+=(benchmarks/bench_"$name"*.py); done
fi
# An unmatched glob stays literal: keep only files that exist.
existing=()
for benchmark in "${benchmarks[@]}"; do
    [ -f "$benchmark" ] && existing+=("$benchmark")
done
[ ${#existing[@]} -gt 0 ] || die "no benchmark matches: ${*:-bench_*.py} (see benchmarks/bench_*.py)"

failed=()
for benchmark in "${existing[@]}"; do
    log "$benchmark"
    python "$benchmark" || failed+=("$benchmark")
done
[ ${#failed[@]} -eq 0 ] || die "benchmark(s) failed: ${failed[*]}"
