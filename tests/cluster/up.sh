#!/usr/bin/env bash
# Bring up a real single-node Kubernetes on this machine (as root):
#   etcd (Debian's etcd-server), kube-apiserver, kube-controller-manager, kube-scheduler,
#   kubelet and kube-proxy (built from k8s.io/kubernetes at the version pinned in k8s/go.mod),
#   containerd + runc + CNI plugins (Debian's packages, a containerd of our own).
# Built binaries are cached in ~/.cache/binderhub-service/k8s-<version>/ and reused; on a
# machine without them they are built from the Go module proxy (about 11 minutes on 2 cores).
# Idempotent: when the cluster is already up it only checks it. When it finds a cluster that
# is partly up or was killed, it cleans the node (down.sh) and starts afresh.
# The last line on stdout is KUBECONFIG=<path>; all progress goes to stderr.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ "$(id -u)" = 0 ] || die "run as root (the kubelet and containerd need it)"
T0=$SECONDS

# One up.sh/down.sh at a time (the lock lives outside $STATE, which down.sh removes).
LOCK="${STATE%/}.lock"
exec 9>"$LOCK"
flock 9

COMPONENTS=(etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

# ---------------------------------------------------------------------------------------------
# binaries
# ---------------------------------------------------------------------------------------------
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

# Changes whenever what build_k8s makes changes (bump BUILD_REV when changing its flags).
BUILD_REV=2
build_key() { cat "$CLUSTER_DIR/k8s/go.mod" "$CLUSTER_DIR/k8s/pause/main.go" | sha256sum | cut -c1-16; echo "rev $BUILD_REV"; }

build_k8s() {
    [ "$(cat "$K8S_CACHE/.complete" 2>/dev/null)" = "$(build_key)" ] && return 0
    command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null || die "Go is needed to build Kubernetes $K8S_VERSION (go 1.24 or later on PATH)"
    log "building Kubernetes $K8S_VERSION into $K8S_CACHE (about 11 minutes on 2 cores with empty Go caches; log: $CACHE_ROOT/k8s-build.log)"
    mkdir -p "$CACHE_ROOT"
    local tmp="$K8S_CACHE.tmp" pkgs=() b
    mkdir -p "$tmp/bin"
    for b in "${K8S_BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    # The version the programs report (what hack/lib/version.sh stamps in a release build):
    # charts' kubeVersion constraints and clients read it.
    local minor ldflags="-s -w" p
    minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        ldflags+=" -X $p.gitTreeState=clean -X $p.gitCommit= -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    # One invocation: the programs share most of their packages.
    (
        cd "$CLUSTER_DIR/k8s"
        export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
        go build -trimpath -ldflags="$ldflags" -o "$tmp/bin/" "${pkgs[@]}"
        go build -trimpath -ldflags='-s -w' -o "$tmp/bin/pause" ./pause
    ) >"$CACHE_ROOT/k8s-build.log" 2>&1 || die "building Kubernetes failed; see $CACHE_ROOT/k8s-build.log"
    "$tmp/bin/kubelet" --version | grep -x "Kubernetes $K8S_VERSION" >/dev/null || die "the kubelet built is not $K8S_VERSION"
    build_key >"$tmp/.complete"
    rm -rf "$K8S_CACHE"
    mv "$tmp" "$K8S_CACHE"
}

# CoreDNS from the Go module proxy (a static binary; about 3 minutes on 2 cores).
build_coredns() {
    [ -x "$COREDNS_CACHE/coredns" ] && return 0
    command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null || die "Go is needed to build CoreDNS $COREDNS_VERSION"
    log "building CoreDNS $COREDNS_VERSION into $COREDNS_CACHE (log: $CACHE_ROOT/coredns-build.log)"
    local tmp="$COREDNS_CACHE.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    (
        export CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="-buildvcs=false"
        nice go install -trimpath -ldflags='-s -w' "github.com/coredns/coredns@$COREDNS_VERSION"
    ) >"$CACHE_ROOT/coredns-build.log" 2>&1 || die "building CoreDNS failed; see $CACHE_ROOT/coredns-build.log"
    "$tmp/coredns" -version | grep "CoreDNS-${COREDNS_VERSION#v}" >/dev/null || die "the CoreDNS built is not $COREDNS_VERSION"
    rm -rf "$COREDNS_CACHE"
    mv "$tmp" "$COREDNS_CACHE"
}

# kube-router from the Go module proxy (a static binary; about 2.5 minutes on 2 cores with
# empty Go caches). Only its network policy controller runs here (ensure_policy_enforcer).
build_kube_router() {
    [ -x "$KUBE_ROUTER_CACHE/kube-router" ] && return 0
    command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null || die "Go is needed to build kube-router $KUBE_ROUTER_VERSION"
    log "building kube-router $KUBE_ROUTER_VERSION into $KUBE_ROUTER_CACHE (log: $CACHE_ROOT/kube-router-build.log)"
    local tmp="$KUBE_ROUTER_CACHE.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    (
        export CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="-buildvcs=false"
        nice go install -trimpath -ldflags='-s -w' \
            "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
    ) >"$CACHE_ROOT/kube-router-build.log" 2>&1 || die "building kube-router failed; see $CACHE_ROOT/kube-router-build.log"
    "$tmp/kube-router" --help 2>&1 | grep -e '--run-firewall' >/dev/null || die "the kube-router built does not run"
    rm -rf "$KUBE_ROUTER_CACHE"
    mv "$tmp" "$KUBE_ROUTER_CACHE"
}

# NetworkPolicy enforcement, as a cloud's network plugin gives it: kube-router's network
# policy controller (iptables and ipsets on the node; the bridge CNI still carries the
# traffic, as flannel does beside kube-router in k3s). Pods' traffic crosses the node's
# filter table (bridge-nf-call-iptables), where it jumps to a chain per pod. Started when not
# running, also on a cluster brought up before it existed (which gets its certificate then).
ensure_policy_enforcer() {
    if [ ! -s "$STATE/kube-router.kubeconfig" ]; then
        mkcert kube-router system:kube-router "" clientAuth
        mkkubeconfig "$STATE/kube-router.kubeconfig" kube-router
    fi
    kubectl_ apply -f "$CLUSTER_DIR/k8s/kube-router/rbac.yaml" >/dev/null \
        || die "could not give kube-router its permissions"
    pid_alive kube-router && return 0
    start kube-router "$KUBE_ROUTER_CACHE/kube-router" \
        --kubeconfig "$STATE/kube-router.kubeconfig" \
        --hostname-override "$NODE_NAME" \
        --run-firewall=true --run-router=false --run-service-proxy=false \
        --enable-cni=false --enable-pod-egress=false \
        --service-cluster-ip-range "$SERVICE_CIDR" \
        --health-port 0 --metrics-port 0 \
        --v 1
    expect_up kube-router 60 policies_enforced
}

# kube-router has synced once ("sync iptables took ..." ends a full sync, at --v 1): its
# chains are hooked into the filter table.
policies_enforced() {
    grep -F "sync iptables took" "$STATE/logs/kube-router.log" >/dev/null \
        && iptables -t filter -S FORWARD | grep -e '-j KUBE-ROUTER-FORWARD' >/dev/null
}

# The CoreDNS image: the cached binary on the Debian base, in containerd (no registry).
load_coredns_image() {
    if ctr_ images check "name==docker.io/$COREDNS_IMAGE" 2>/dev/null | grep complete >/dev/null; then return 0; fi
    if ! "$DOCKER" image inspect "$COREDNS_IMAGE" >/dev/null 2>&1; then
        local tmp
        tmp="$(mktemp -d)"
        cp "$COREDNS_CACHE/coredns" "$tmp/coredns"
        printf 'FROM %s\nCOPY coredns /coredns\nENTRYPOINT ["/coredns"]\n' "$BASE_IMAGE" >"$tmp/Dockerfile"
        "$DOCKER" build -q -t "$COREDNS_IMAGE" "$tmp" >/dev/null || die "could not build $COREDNS_IMAGE"
        rm -rf "$tmp"
    fi
    "$DOCKER" save "$COREDNS_IMAGE" | ctr_ images import - >/dev/null
}

# Cluster DNS objects (kubectl apply: unchanged objects stay), then wait until it answers.
deploy_dns() {
    dns_ready && return 0
    load_coredns_image || die "could not load $COREDNS_IMAGE into containerd"
    sed -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g" \
        -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" "$CLUSTER_DIR/k8s/coredns/coredns.yaml" \
        | kubectl_ apply -f - >/dev/null || die "could not create the cluster DNS objects"
    wait_until 120 dns_ready || {
        kubectl_ -n kube-system describe pods -l k8s-app=kube-dns | tail -n 30 >&2 || true
        die "CoreDNS did not become ready within 120s"
    }
}

dns_ready() {
    [ "$(kubectl_ -n kube-system get deployment coredns -o 'jsonpath={.status.readyReplicas}' 2>/dev/null)" = 1 ]
}

# The default StorageClass and its provisioner (k8s/local-volumes.sh), so that charts'
# claims get volumes as on a real cluster. Started when not running (also on a running
# cluster brought up before it existed).
ensure_volumes() {
    if ! pid_alive local-volumes; then
        start local-volumes "$CLUSTER_DIR/k8s/local-volumes.sh"
    fi
    kubectl_ apply -f - >/dev/null <<EOF || die "could not create the default StorageClass"
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: bhs-local
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: binderhub-service.test/local-dir
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF
}

ensure_docker() {
    if [ -x "$REPO_DIR/scripts/ensure-docker.sh" ]; then
        (close_inherited_fds && exec "$REPO_DIR/scripts/ensure-docker.sh") >&2 || die "scripts/ensure-docker.sh failed"
        return 0
    fi
    need_packages docker.io
    "$DOCKER" version >/dev/null 2>&1 && return 0
    mkdir -p "$STATE"
    log "starting dockerd (log: $CACHE_ROOT/dockerd.log)"
    (close_inherited_fds && exec setsid nohup dockerd --host unix:///var/run/docker.sock >"$CACHE_ROOT/dockerd.log" 2>&1) &
    wait_until 60 "$DOCKER" version || die "dockerd did not come up; see $CACHE_ROOT/dockerd.log"
}

# ---------------------------------------------------------------------------------------------
# health of a running cluster
# ---------------------------------------------------------------------------------------------
all_running() {
    local c
    for c in "${COMPONENTS[@]}"; do pid_alive "$c" || return 1; done
}

node_ready() {
    [ "$(kubectl_ get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

cluster_healthy() {
    # a kubelet started before the cluster had DNS hands pods no cluster resolver: start afresh
    grep -qx "clusterDNS: \[$DNS_SERVICE_IP\]" "$STATE/kubelet-config.yaml" 2>/dev/null || return 1
    all_running && kubectl_ get --raw /readyz >/dev/null 2>&1 && node_ready
}

# ---------------------------------------------------------------------------------------------
# certificates and kubeconfigs
# ---------------------------------------------------------------------------------------------
PKI="$STATE/pki"

mkcert() { # NAME CN O EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
    local name=$1 cn=$2 o=$3 eku=$4 san=${5:-} subj
    subj="/CN=$cn"
    [ -n "$o" ] && subj="/O=$o$subj"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$eku"
        [ -n "$san" ] && echo "subjectAltName=$san"
    } >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

mkkubeconfig() { # FILE CERT_NAME
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: binderhub-service-test
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$2.crt")
    client-key-data: $(base64 -w0 "$PKI/$2.key")
contexts:
- name: binderhub-service-test
  context:
    cluster: binderhub-service-test
    user: $2
    namespace: default
current-context: binderhub-service-test
EOF
    chmod 600 "$1"
}

make_pki() {
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 -subj "/CN=binderhub-service-test-ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
    mkcert apiserver kube-apiserver "" serverAuth \
        "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP"
    mkcert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
    mkcert admin binderhub-service-test-admin system:masters clientAuth
    mkcert kube-controller-manager system:kube-controller-manager "" clientAuth
    mkcert kube-scheduler system:kube-scheduler "" clientAuth
    mkcert kube-proxy system:kube-proxy "" clientAuth
    mkcert kubelet "system:node:$NODE_NAME" system:nodes clientAuth
    mkcert kubelet-serving "system:node:$NODE_NAME" system:nodes serverAuth "DNS:$NODE_NAME,IP:$NODE_IP"
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    local c
    for c in admin kube-controller-manager kube-scheduler kube-proxy kubelet; do
        mkkubeconfig "$STATE/$c.kubeconfig" "$c"
    done
    cp "$STATE/admin.kubeconfig" "$KUBECONFIG_PATH"
}

# ---------------------------------------------------------------------------------------------
# node networking: the pod bridge carries the node IP
# ---------------------------------------------------------------------------------------------
setup_network() {
    # pods' traffic must cross iptables (kube-proxy's service rules) and be forwarded
    [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null \
        || die "the br_netfilter kernel module is missing"
    sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    ip addr replace "$NODE_IP/16" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    mkdir -p "$STATE/cni/net.d" "$STATE/cni/networks"
    cat >"$STATE/cni/net.d/10-bhs.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "bhs-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/networks",
        "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "10.244.1.1", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall", "backend": "iptables"}
  ]
}
EOF
}

# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------
start() { # NAME BINARY ARGS... : start in the background, log to $STATE/logs/NAME.log
    local name=$1 bin=$2; shift 2
    mkdir -p "$STATE/logs" "$STATE/pids"
    # no lock (ours on fd 9, or a caller's flock) may stay open in the daemons
    (
        close_inherited_fds
        exec setsid nohup "$bin" "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null
    ) &
    echo $! >"$STATE/pids/$name.pid"
    echo "$bin" >"$STATE/pids/$name.cmd"
}

expect_up() { # NAME SECONDS CHECK... : wait for CHECK, or show the log and fail
    local name=$1 secs=$2; shift 2
    if ! wait_until "$secs" "$@"; then
        tail -n 30 "$STATE/logs/$name.log" >&2 || true
        die "$name did not come up within ${secs}s; log: $STATE/logs/$name.log"
    fi
    pid_alive "$name" || die "$name exited; log: $STATE/logs/$name.log"
}

start_etcd() {
    start etcd "$(command -v etcd)" --name bhs --data-dir "$STATE/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "bhs=http://127.0.0.1:$ETCD_PEER_PORT" \
        --listen-metrics-urls "" --logger zap --log-level warn \
        --experimental-watch-progress-notify-interval 5s
}

start_containerd() {
    local d="$STATE/containerd"
    mkdir -p "$d/certs.d"
    # the node's registries answer plain HTTP
    local reg
    for reg in "127.0.0.1:5000" "localhost:5000" "$NODE_IP:5000"; do
        mkdir -p "$d/certs.d/$reg"
        printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve", "push"]\n  skip_verify = true\n' \
            "$reg" "$reg" >"$d/certs.d/$reg/hosts.toml"
    done
    cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
oom_score = 0

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$d/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/$PAUSE_IMAGE"
  enable_selinux = false
  disable_apparmor = true
  # root here lacks CAP_SYS_RESOURCE: runc cannot lower a process's oom_score_adj
  # (the kubelet asks -998 for sandboxes), so keep scores at or above containerd's own
  restrict_oom_score_adj = true
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$d/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$d/certs.d"
EOF
    start containerd "$(command -v containerd)" --config "$d/config.toml"
}

start_apiserver() {
    start kube-apiserver "$K8S_CACHE/bin/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
        --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
        --client-ca-file "$PKI/ca.crt" \
        --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
        --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority "$PKI/ca.crt" \
        --kubelet-preferred-address-types InternalIP \
        --service-account-issuer "https://kubernetes.default.svc.cluster.local" \
        --service-account-key-file "$PKI/sa.pub" \
        --service-account-signing-key-file "$PKI/sa.key" \
        --api-audiences "https://kubernetes.default.svc.cluster.local" \
        --service-cluster-ip-range "$SERVICE_CIDR" \
        --authorization-mode Node,RBAC \
        --enable-admission-plugins NodeRestriction \
        --allow-privileged=true \
        --profiling=false \
        --v=1
}

start_controller_manager() {
    start kube-controller-manager "$K8S_CACHE/bin/kube-controller-manager" \
        --kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
        --authentication-kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
        --authorization-kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port 10257 \
        --leader-elect=false \
        --controllers '*' \
        --use-service-account-credentials=true \
        --service-account-private-key-file "$PKI/sa.key" \
        --root-ca-file "$PKI/ca.crt" \
        --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
        --service-cluster-ip-range "$SERVICE_CIDR" \
        --cluster-cidr "$POD_CIDR" \
        --profiling=false \
        --v=1
}

start_scheduler() {
    start kube-scheduler "$K8S_CACHE/bin/kube-scheduler" \
        --kubeconfig "$STATE/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port 10259 \
        --leader-elect=false \
        --profiling=false \
        --v=1
}

start_kubelet() {
    mkdir -p "$STATE/kubelet"
    cat >"$STATE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
rotateCertificates: false
serverTLSBootstrap: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
imageServiceEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
resolvConf: /etc/resolv.conf
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: $CLUSTER_DOMAIN
# images loaded from the local Docker daemon must never be garbage collected
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
serializeImagePulls: false
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
maxPods: 110
podPidsLimit: -1
EOF
    start kubelet "$K8S_CACHE/bin/kubelet" \
        --config "$STATE/kubelet-config.yaml" \
        --kubeconfig "$STATE/kubelet.kubeconfig" \
        --root-dir "$STATE/kubelet" \
        --cert-dir "$STATE/kubelet/pki" \
        --hostname-override "$NODE_NAME" \
        --node-ip "$NODE_IP" \
        --pod-infra-container-image "docker.io/$PAUSE_IMAGE" \
        --v=1
}

start_kube_proxy() {
    cat >"$STATE/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $STATE/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
iptables:
  localhostNodePorts: false
  masqueradeAll: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
    start kube-proxy "$K8S_CACHE/bin/kube-proxy" --config "$STATE/kube-proxy-config.yaml" --v=1
}

load_pause_image() {
    if ctr_ images check "name==docker.io/$PAUSE_IMAGE" 2>/dev/null | grep complete >/dev/null; then return 0; fi
    if ! "$DOCKER" image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
        local tmp
        tmp="$(mktemp -d)"
        cp "$K8S_CACHE/bin/pause" "$tmp/pause"
        tar -C "$tmp" -c pause | "$DOCKER" import --change 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null
        rm -rf "$tmp"
    fi
    "$DOCKER" save "$PAUSE_IMAGE" | ctr_ images import - >/dev/null
}

# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
need_packages containerd runc containernetworking-plugins etcd-server iptables ipset conntrack \
    openssl iproute2 util-linux ca-certificates curl git
build_k8s
build_coredns
build_kube_router
ensure_helm

if [ -d "$STATE" ] && cluster_healthy; then
    # the kubelet's image garbage collection may have taken it (containerd 1.6 does not pin
    # the sandbox image): without it no pod starts, on a node that looks healthy
    if ! ctr_ images check "name==docker.io/$PAUSE_IMAGE" 2>/dev/null | grep complete >/dev/null; then
        log "the node lost its pause image: loading it again"
        ensure_docker
        load_pause_image || die "could not load the pause image into containerd"
    fi
    deploy_dns
    ensure_volumes
    ensure_policy_enforcer
    log "cluster already up (checked in $((SECONDS - T0))s)"
    echo "KUBECONFIG=$KUBECONFIG_PATH"
    exit 0
fi

ensure_docker
# whatever is left of an earlier cluster (partly up, killed, or its state removed) goes first
[ -d "$STATE" ] && log "cleaning up a cluster that is down or partly up"
BHS_CLUSTER_LOCKED=1 "$CLUSTER_DIR/down.sh" >&2 9>&-

log "starting Kubernetes $K8S_VERSION (state: $STATE)"
mkdir -p "$STATE"
make_pki
setup_network

start_etcd
start_containerd
expect_up etcd 60 curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
start_apiserver
expect_up containerd 60 ctr --address "$CONTAINERD_SOCK" version
load_pause_image &
pause_loader=$!
expect_up kube-apiserver 120 kubectl_ get --raw /readyz
start_controller_manager
start_scheduler
start_kube_proxy
wait "$pause_loader" || die "could not load the pause image into containerd"
start_kubelet
expect_up kubelet 120 node_ready
expect_up kube-controller-manager 60 kubectl_ get serviceaccount default -n default
expect_up kube-scheduler 60 curl -fsSk https://127.0.0.1:10259/healthz
expect_up kube-proxy 60 curl -fsS http://127.0.0.1:10256/healthz
deploy_dns
ensure_volumes
ensure_policy_enforcer

log "cluster up in $((SECONDS - T0))s; node $NODE_NAME at $NODE_IP; helm: $HELM"
echo "KUBECONFIG=$KUBECONFIG_PATH"
