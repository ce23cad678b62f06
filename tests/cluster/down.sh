#!/usr/bin/env bash
# Stop the test cluster that up.sh started, and only that, and clean the node:
# pods and their containers, containerd, the Kubernetes components, etcd, mounts under the
# state directory, the pods' network namespaces and iptables chains, the pod bridge, and the
# state directory itself. The Docker daemon and registries are shared with other tests and
# are left running. Safe to run when nothing is up, or after the processes were killed.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ "$(id -u)" = 0 ] || die "run as root"
if [ -z "${BHS_CLUSTER_LOCKED:-}" ]; then
    exec 9>"${STATE%/}.lock"
    flock 9
fi

# alive PID : the process exists and is not a zombie (our daemons' parent may reap late)
alive() { [ -e "/proc/$1/stat" ] && [ "$(sed -E 's/.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

stop_pid() { # NAME : TERM the recorded process, KILL it after 10 s
    local f="$STATE/pids/$1.pid" pid
    pid_alive "$1" || { rm -f "$f"; return 0; }
    pid="$(cat "$f")"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    rm -f "$f"
}

# Our programs: the cached Kubernetes components, and etcd/containerd/shims pointed at $STATE.
# (Not kubectl: others run it.)
our_pids() {
    local exe pid
    find /proc/[0-9]*/exe -maxdepth 0 \( -lname "$K8S_CACHE/bin/kube-*" -o -lname "$K8S_CACHE/bin/kubelet*" \
        -o -lname '*/etcd' -o -lname '*/containerd' -o -lname '*/containerd-shim-runc-v2' \) 2>/dev/null |
        while read -r exe; do
            pid="${exe#/proc/}"
            pid="${pid%/exe}"
            alive "$pid" || continue
            case "$(readlink "$exe")" in
                "$K8S_CACHE"/*) echo "$pid" ;;
                *) tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -- "$STATE/" >/dev/null && echo "$pid" ;;
            esac
        done
}

kubepods_cgroups() { find /sys/fs/cgroup/*/kubepods -depth -type d 2>/dev/null; }

if [ -d "$STATE" ]; then
    log "stopping the cluster in $STATE"
    # 1. Let the kubelet stop the pods (so CNI releases their network) while nothing makes new ones.
    stop_pid local-volumes
    # the policy enforcer first: no chain of a pod that is going may outlive it
    stop_pid kube-router
    stop_pid kube-controller-manager
    stop_pid kube-scheduler
    if pid_alive kubelet && pid_alive kube-apiserver && pid_alive containerd; then
        kubectl_ delete pods --all --all-namespaces --force --grace-period=0 --wait=false >/dev/null 2>&1
        for i in $(seq 1 60); do
            ctr_ tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"' | grep . >/dev/null || break
            [ "$i" = 60 ] && log "some pods were still running after 30 s; killing them"
            sleep 0.5
        done
    fi
    stop_pid kubelet
    stop_pid kube-proxy
    stop_pid kube-apiserver
fi

# 2. Kill whatever is left in the pods' cgroups, then the shims, containerd and etcd.
for cg in $(kubepods_cgroups); do
    for pid in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
done
if [ -d "$STATE" ]; then
    stop_pid containerd
    stop_pid etcd
fi
for pid in $(our_pids); do kill -KILL "$pid" 2>/dev/null; done
for _ in $(seq 1 40); do [ -z "$(our_pids)" ] && break; sleep 0.25; done
for _ in $(seq 1 20); do
    left=0
    for cg in $(kubepods_cgroups); do rmdir "$cg" 2>/dev/null || left=1; done
    [ $left = 0 ] && break
    sleep 0.25
done

# 3. Mounts under the state directory (container root filesystems, shm, pod volumes), deepest first.
if [ -d "$STATE" ]; then
    awk -v s="$STATE/" 'index($5, s) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
fi

# 4. Network: pods' namespaces (containerd's CRI names them cni-*; only empty ones are removed),
#    kube-proxy's and the CNI plugins' iptables chains, the pod bridge.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ { print $1 }'); do
    [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && ip netns delete "$ns" 2>/dev/null
done
remove_chains() { # IPTABLES PREFIX : rules jumping to PREFIX* chains, then the chains
    local ipt=$1 prefix=$2 table rule chain
    for table in nat filter mangle; do
        "$ipt-save" -t "$table" 2>/dev/null | grep -E "^-A .* -j $prefix" | grep -vE "^-A $prefix" | while read -r rule; do
            eval "$ipt -t $table -D ${rule#-A }" 2>/dev/null
        done
        for chain in $("$ipt-save" -t "$table" 2>/dev/null | awk -v p=":$prefix" 'index($1, p) == 1 { print substr($1, 2) }'); do
            "$ipt" -t "$table" -F "$chain" 2>/dev/null
        done
        for chain in $("$ipt-save" -t "$table" 2>/dev/null | awk -v p=":$prefix" 'index($1, p) == 1 { print substr($1, 2) }'); do
            "$ipt" -t "$table" -X "$chain" 2>/dev/null
        done
    done
}
# KUBE-* chains are the kubelet's, kube-proxy's and kube-router's (KUBE-ROUTER-*, KUBE-POD-FW-*,
# KUBE-NWPLCY-*), CNI-* the CNI plugins' (Docker uses neither)
for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    remove_chains "$ipt" KUBE-
    remove_chains "$ipt" CNI-
done
# kube-router's ipsets (pods' and policies' addresses), once no rule refers to them: a new
# cluster's pods get the same addresses
if command -v ipset >/dev/null; then
    for set in $(ipset list -n 2>/dev/null | grep -E '^KUBE-(SRC|DST)-'); do
        ipset destroy "$set" 2>/dev/null
    done
fi
ip link delete "$BRIDGE" 2>/dev/null

# 5. The state directory (never across a mount that is still there).
if [ -d "$STATE" ]; then
    rm -rf --one-file-system "$STATE" 2>/dev/null || log "could not remove all of $STATE"
fi
log "cluster down"
