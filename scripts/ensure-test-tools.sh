#!/usr/bin/env bash
# What the integration tests run besides Docker: a registry binary (each test
# session starts its own registries on free ports), htpasswd for the registry with
# authentication, git for the git server, Chromium for the page.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages docker-registry apache2-utils git curl chromium
