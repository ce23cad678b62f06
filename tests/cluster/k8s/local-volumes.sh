#!/usr/bin/env bash
# The test cluster's volume provisioner (started by up.sh, stopped by down.sh): what a
# cloud's default StorageClass does, for the one node. For each claim of the class
# `bhs-local` (the cluster's default) that waits for a volume, it makes a directory under
# $STATE/volumes and a `local` PersistentVolume bound to the claim; for each of its volumes
# whose claim is gone (Released), it deletes the directory and the volume.
#
# `local` volumes, not hostPath: the kubelet applies a pod's fsGroup to them as it does to a
# cloud disk, so a chart whose pods run as a non-root user works here as it would there.
# A loop over kubectl every POLL seconds keeps it to a few lines of shell; nothing here
# outlives the cluster (the directories are under $STATE).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

CLASS="bhs-local"
PROVISIONER="binderhub-service.test/local-dir"
VOLUMES="$STATE/volumes"
POLL="${BHS_VOLUMES_POLL:-2}"
mkdir -p "$VOLUMES"

provision() { # NAMESPACE NAME UID SIZE ACCESS_MODE
    local ns=$1 name=$2 uid=$3 size=$4 mode=$5 pv="pvc-$3"
    mkdir -p "$VOLUMES/$pv"
    kubectl_ apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $pv
  annotations:
    pv.kubernetes.io/provisioned-by: $PROVISIONER
spec:
  storageClassName: $CLASS
  capacity: {storage: "$size"}
  accessModes: ["$mode"]
  persistentVolumeReclaimPolicy: Delete
  volumeMode: Filesystem
  claimRef: {namespace: "$ns", name: "$name", uid: "$uid"}
  local: {path: "$VOLUMES/$pv"}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: kubernetes.io/hostname, operator: In, values: ["$NODE_NAME"]}
EOF
    log "provisioned $pv for $ns/$name"
}

while true; do
    kubectl_ get pvc --all-namespaces -o jsonpath='{range .items[?(@.status.phase=="Pending")]}{.metadata.namespace}{"\t"}{.metadata.name}{"\t"}{.metadata.uid}{"\t"}{.spec.storageClassName}{"\t"}{.spec.resources.requests.storage}{"\t"}{.spec.accessModes[0]}{"\t"}{.spec.volumeName}{"\n"}{end}' 2>/dev/null |
        while IFS=$'\t' read -r ns name uid class size mode volume; do
            [ "$class" = "$CLASS" ] && [ -z "$volume" ] || continue
            kubectl_ get pv "pvc-$uid" >/dev/null 2>&1 || provision "$ns" "$name" "$uid" "$size" "${mode:-ReadWriteOnce}"
        done
    kubectl_ get pv -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\t"}{.metadata.annotations.pv\.kubernetes\.io/provisioned-by}{"\n"}{end}' 2>/dev/null |
        while IFS=$'\t' read -r pv by; do
            [ "$by" = "$PROVISIONER" ] || continue
            rm -rf --one-file-system "${VOLUMES:?}/$pv"
            kubectl_ delete pv "$pv" --wait=false >/dev/null 2>&1 && log "deleted $pv"
        done
    sleep "$POLL"
done
