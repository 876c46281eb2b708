#!/usr/bin/env bash
# Tools of the Helm chart tests (tests/deploy/test_helm.py), built or fetched from the Go module proxy and cached
# under ~/.cache/slamon/ (SLAMON_TOOLS_CACHE overrides it); a later run finds them and does nothing.
#
#   bash deploy/local/install-helm.sh helm   # helm, built from the Go module helm.sh/helm/v3 with the machine's Go
#   bash deploy/local/install-helm.sh crds   # the Prometheus Operator CRDs (ServiceMonitor, PrometheusRule, ...)
#   bash deploy/local/install-helm.sh        # both
#
# The test suite looks for them at the paths printed by `install-helm.sh paths` (the same defaults are in
# tests/deploy/test_helm.py). Go is taken from $GO, else `go` on PATH, else /usr/local/go/bin/go.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# the root module of prometheus-operator carries example/prometheus-operator-crd/*.yaml (the proxy serves v0.85.0)
PROM_OPERATOR_VERSION="${PROM_OPERATOR_VERSION:-v0.85.0}"
CACHE="${SLAMON_TOOLS_CACHE:-$HOME/.cache/slamon}"
HELM_DIR="$CACHE/helm-$HELM_VERSION"
CRD_DIR="$CACHE/prometheus-operator-crds-$PROM_OPERATOR_VERSION"

find_go() {
    if [[ -n "${GO:-}" ]]; then echo "$GO"; return; fi
    if command -v go >/dev/null 2>&1; then command -v go; return; fi
    if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
    echo "install-helm.sh: no Go toolchain found (set GO=/path/to/go)" >&2
    exit 1
}

install_helm() {
    if [[ -x "$HELM_DIR/helm" ]] && "$HELM_DIR/helm" version --short 2>/dev/null | grep -Eq "^$HELM_VERSION(\+|$)"; then
        echo "helm $HELM_VERSION: $HELM_DIR/helm (cached)"
        return
    fi
    local go
    go="$(find_go)"
    tmp="$(mktemp -d "${CACHE}/.helm-build.XXXXXX")"
    echo "building helm $HELM_VERSION with $("$go" version) (a few minutes the first time) ..."
    # GOFLAGS=-mod=mod: outside any module; CGO off: a static binary, as helm's own release builds
    GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod "$go" install \
        -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    "$tmp/helm" version --short | grep -Eq "^$HELM_VERSION(\+|$)" || {
        echo "install-helm.sh: the built helm does not report $HELM_VERSION" >&2; exit 1; }
    mkdir -p "$HELM_DIR"
    mv -f "$tmp/helm" "$HELM_DIR/helm.new" && mv -f "$HELM_DIR/helm.new" "$HELM_DIR/helm"
    rm -rf "$tmp"; tmp=""
    echo "helm $HELM_VERSION: $HELM_DIR/helm"
}

install_crds() {
    if [[ -f "$CRD_DIR/.complete" ]]; then
        echo "Prometheus Operator $PROM_OPERATOR_VERSION CRDs: $CRD_DIR (cached)"
        return
    fi
    local go dir
    go="$(find_go)"
    # `go mod download -json` prints the module's directory in the module cache ("Dir")
    dir="$(cd "$CACHE" && GOFLAGS=-mod=mod "$go" mod download -json \
        "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    if [[ -z "$dir" || ! -d "$dir/example/prometheus-operator-crd" ]]; then
        echo "install-helm.sh: no example/prometheus-operator-crd in prometheus-operator@$PROM_OPERATOR_VERSION" >&2
        exit 1
    fi
    tmp="$(mktemp -d "${CACHE}/.crds.XXXXXX")"
    cp "$dir"/example/prometheus-operator-crd/*.yaml "$tmp/"
    chmod -R u+w,go+rX "$tmp"
    echo "$PROM_OPERATOR_VERSION" > "$tmp/.complete"
    rm -rf "$CRD_DIR"
    mv "$tmp" "$CRD_DIR"; tmp=""
    echo "Prometheus Operator $PROM_OPERATOR_VERSION CRDs: $CRD_DIR ($(ls "$CRD_DIR"/*.yaml | wc -l) files)"
}

tmp=""
trap 'if [[ -n "$tmp" ]]; then rm -rf "$tmp"; fi' EXIT
case "${1:-all}" in
    helm) mkdir -p "$CACHE"; install_helm ;;
    crds) mkdir -p "$CACHE"; install_crds ;;
    all) mkdir -p "$CACHE"; install_helm; install_crds ;;
    paths) echo "$HELM_DIR/helm"; echo "$CRD_DIR" ;;
    *) echo "usage: $0 [helm|crds|all|paths]" >&2; exit 2 ;;
esac
