#!/usr/bin/env bash
# Builds tools/olm-validate (the Operator Framework's bundle validators, from the
# operator-framework/api version pinned in its go.mod and go.sum) into the same
# cache as the control plane, keyed by that version and a hash of the tool's
# sources: nothing is rebuilt while they are unchanged. Also copies OLM's CRDs
# (ClusterServiceVersion, Subscription, ...) from that module into the cache for
# e2e/olm.e2e.ts. Prints the directory holding olm-validate and crds/ on stdout
# (last line).
set -euo pipefail
cd "$(dirname "$0")/../tools/olm-validate"
export PATH="$PATH:/usr/local/go/bin"

CACHE_ROOT="${REGCRED_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/regcred-operator}"
log() { echo "[olm-validate build] $*" >&2; }

api_version=$(awk '$1 == "require" && $2 == "github.com/operator-framework/api" {print $3}' go.mod)
[[ -n "$api_version" ]] || { log "tools/olm-validate/go.mod must require github.com/operator-framework/api on a single line"; exit 1; }
sources_hash=$(cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)
OUT_DIR="$CACHE_ROOT/olm-validate-$api_version-$sources_hash"

if [[ -x "$OUT_DIR/olm-validate" && -f "$OUT_DIR/crds/operators.coreos.com_clusterserviceversions.yaml" ]]; then
  log "cached: $OUT_DIR"
  echo "$OUT_DIR"
  exit 0
fi

command -v go >/dev/null || { log "go is required to build olm-validate"; exit 1; }
start=$(date +%s)
# go.sum pins every module; -mod=readonly refuses to change it.
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
export CGO_ENABLED=0
mkdir -p "$OUT_DIR"
log "building olm-validate with github.com/operator-framework/api $api_version"
go build -trimpath -ldflags "-s -w" -o "$OUT_DIR/olm-validate.tmp" . >&2
module_dir=$(go list -m -f '{{.Dir}}' github.com/operator-framework/api)
rm -rf "$OUT_DIR/crds.tmp" && mkdir -p "$OUT_DIR/crds.tmp"
cp "$module_dir"/crds/operators.coreos.com_*.yaml "$OUT_DIR/crds.tmp/"
chmod u+w "$OUT_DIR"/crds.tmp/*.yaml
rm -rf "$OUT_DIR/crds" && mv "$OUT_DIR/crds.tmp" "$OUT_DIR/crds"
mv "$OUT_DIR/olm-validate.tmp" "$OUT_DIR/olm-validate"
log "cold build took $(( $(date +%s) - start )) s; olm-validate and OLM's CRDs in $OUT_DIR"
echo "$OUT_DIR"
