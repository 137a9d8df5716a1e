#!/usr/bin/env bash
# npm run bundle:validate [-- <bundle dir>]
# Runs the Operator Framework's bundle validators (tools/olm-validate, built or
# reused by scripts/build-olm-validate.sh) on deploy/olm/bundle, with the
# Kubernetes version of the tested control plane for the removed-API checks.
# Exits non-zero when any validator reports an error.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=$(scripts/build-olm-validate.sh | tail -n 1)
k8s_version=$(sed -n 's/^K8S_VERSION="${K8S_VERSION:-v\([0-9.]*\)}"$/\1/p' scripts/build-control-plane.sh)
exec "$bin_dir/olm-validate" -k8s-version "${K8S_VERSION:-$k8s_version}" "${1:-deploy/olm/bundle}"
