#!/usr/bin/env bash
# `make bench` (full, under 20 minutes) and `make bench-quick` (about a minute): installs the
# peers, builds agui-server and the harness in release mode, raises the descriptor limit and runs
# the suite with the load client on CPU 1 (each server is started on CPU 0 by the suite).
# Writes bench/results/latest.md, bench/results/chart.svg and bench/results/raw/ (see
# bench/README.md).
set -euo pipefail

mode="${1:-}"
case "$mode" in
quick | full) ;;
*)
	echo "usage: bench/run.sh quick|full" >&2
	exit 2
	;;
esac
shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() {
	echo "bench/run.sh: $*" >&2
	exit 1
}

# The protocol pins the server to CPU 0 and the client to CPU 1.
command -v taskset >/dev/null || die "taskset is missing (Debian: apt-get install util-linux)"
cpus="$(nproc)"
((cpus >= 2)) || die "the benchmark pins the server to CPU 0 and the client to CPU 1, but this machine has $cpus CPU(s)"
if ((cpus > 2)); then
	echo "bench: note: $cpus CPUs; the server still gets CPU 0 only and the client CPU 1 only"
fi

bench/peers/install.sh

echo "bench: building agui-server and agui-bench (release) …"
${CARGO:-cargo} build --release --locked -p agui-server -p agui-bench

# 10,000 open streams need 10,000+ descriptors in the client and in the server (both inherit
# this limit). Raise the soft limit to the hard one; the suite reports the soak as skipped, with
# the reason, when that is still too low.
hard="$(ulimit -Hn)"
if [[ "$hard" == unlimited ]]; then
	ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
else
	ulimit -n "$hard" 2>/dev/null || true
fi
echo "bench: descriptor limit $(ulimit -n) (hard $(ulimit -Hn)); load $(cut -d' ' -f1-3 /proc/loadavg)"

# Builds and other work on the machine disturb the figures (a shared 2-vCPU VM); when allowed
# (root), the harness and the servers it starts run at a higher priority.
prio=()
if nice -n -10 true 2>/dev/null; then
	prio=(nice -n -10)
fi
started="$(date +%s)"
"${prio[@]}" taskset -c 1 target/release/agui-bench suite --mode "$mode" --root "$root" "$@"
echo "bench: done in $(($(date +%s) - started)) s"
echo "bench: report: $root/bench/results/latest.md"
echo "bench: chart:  $root/bench/results/chart.svg"
echo "bench: raw:    $root/bench/results/raw/ (results.json, server logs, keys)"
