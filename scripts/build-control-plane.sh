#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl from pinned Go
# module versions into a cache outside the repository, keyed by version.
# Only missing binaries are built. Prints the directory holding them on stdout
# (last line). Honour KUBEBUILDER_ASSETS: when set, nothing is built.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.13}"
CACHE_ROOT="${REGCRED_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/regcred-operator}"
BIN_DIR="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

log() { echo "[control-plane build] $*" >&2; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for b in kube-apiserver etcd; do
    [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || { log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks $b"; exit 1; }
  done
  log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

mkdir -p "$BIN_DIR"
missing=()
for b in kube-apiserver kube-controller-manager kubectl etcd; do
  [[ -x "$BIN_DIR/$b" ]] || missing+=("$b")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  log "cached: $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

command -v go >/dev/null || { log "go is required to build the control plane"; exit 1; }
start=$(date +%s)
work="$CACHE_ROOT/src-$K8S_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$work/k8s" "$work/etcd"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
staging_version="v0.${K8S_VERSION#v1.}"
version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
done

k8s_targets=()
for b in "${missing[@]}"; do [[ "$b" != etcd ]] && k8s_targets+=("$b"); done

if [[ ${#k8s_targets[@]} -gt 0 ]]; then
  cd "$work/k8s"
  if [[ ! -f go.sum ]]; then
    log "resolving k8s.io/kubernetes $K8S_VERSION"
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    {
      echo "module regcred-operator/controlplane"
      echo
      echo "go 1.25"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      # Staging modules are required at exactly v0.0.0 and replaced by local paths
      # absent from the module zip; point them at the published versions instead.
      grep -E '^\s+k8s\.io/[^ ]+ v0\.0\.0$' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
    } > go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubectl/pkg/cmd"
)
GO
    cat > main.go <<'GO'
package main

func main() {}
GO
    go mod tidy >&2
    go get k8s.io/kubernetes/cmd/kubectl >&2 || true
  fi
  for b in "${k8s_targets[@]}"; do
    t0=$(date +%s)
    log "building $b"
    go build -trimpath -ldflags "-s -w $version_flags" -o "$BIN_DIR/$b.tmp" "k8s.io/kubernetes/cmd/$b" >&2
    mv "$BIN_DIR/$b.tmp" "$BIN_DIR/$b"
    log "built $b in $(( $(date +%s) - t0 )) s"
  done
fi

if [[ " ${missing[*]} " == *" etcd "* ]]; then
  cd "$work/etcd"
  if [[ ! -f go.mod ]]; then
    printf 'module regcred-operator/etcd\n\ngo 1.25\n' > go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
    printf 'package main\n\nfunc main() {}\n' > main.go
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    go mod tidy >&2
  fi
  t0=$(date +%s)
  log "building etcd"
  go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
  log "built etcd in $(( $(date +%s) - t0 )) s"
fi

log "cold build took $(( $(date +%s) - start )) s; binaries in $BIN_DIR"
echo "$BIN_DIR"
