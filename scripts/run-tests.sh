#!/usr/bin/env bash
# The suite of `make test`, in two pytest processes side by side: the cluster tests
# (tests/cluster, which mostly wait for the Kubernetes API, the kubelet and build pods)
# and everything else (which mostly waits for Docker, BuildKit and repo2docker). Nothing
# in one half uses what the other half starts: each starts its own registries, git
# servers and services on free ports, and only tests/cluster uses the cluster.
#
#   scripts/run-tests.sh              both halves; the exit status is the first failing one's
#   scripts/run-tests.sh ARGS...      one pytest with ARGS (a developer's subset)
#
# The cluster half writes to a log file that is printed when the other half ends (and
# followed until the cluster half ends); its path is printed at the start, for `tail -f`.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
pytest=("$PY" -m pytest --durations=25)

if [ $# -gt 0 ]; then
    exec "${pytest[@]}" "$@"
fi

log=$(mktemp -t cluster-tests.XXXXXX.log)
"${pytest[@]}" tests/cluster >"$log" 2>&1 &
cluster=$!
trap 'kill -TERM "$cluster" 2>/dev/null' EXIT INT TERM
echo "tests/cluster runs beside the rest; its output: $log"

"${pytest[@]}" --ignore=tests/cluster
rest=$?

echo
echo "===== tests/cluster ($log) ====="
tail -n +1 -f --pid="$cluster" "$log"
wait "$cluster"
cluster_status=$?
trap - EXIT INT TERM

echo
echo "make test: tests/cluster exited $cluster_status, the rest exited $rest"
if [ "$rest" -ne 0 ]; then exit "$rest"; fi
exit "$cluster_status"
