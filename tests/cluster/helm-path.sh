#!/usr/bin/env bash
# Print the path of the pinned helm binary (fetching it into the cache first if needed).
# Usage: HELM="$(tests/cluster/helm-path.sh)"
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_helm
echo "$HELM"
