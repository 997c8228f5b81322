#!/usr/bin/env bash
# helm.sh: print the path of the pinned helm binary, building it into bin/ first when it is
# missing or another version. Built from the Go module proxy (no prebuilt download), with the
# same version ldflags as helm's own Makefile so `helm version` and the default Kubernetes
# version of `helm template`/`helm lint` are right.
#
#   HELM=$(scripts/helm.sh) && "$HELM" lint deploy/helm/neo-events-worker
set -euo pipefail

HELM_VERSION=v3.22.0
# helm v3.22.0 builds against k8s.io/client-go v0.37.x: its default Kubernetes version is 1.37.
K8S_MAJOR=1
K8S_MINOR=37

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin/helm"

have_version() {
  [ -x "$bin" ] && go version -m "$bin" 2>/dev/null |
    grep -Eq "^[[:space:]]+mod[[:space:]]+helm\.sh/helm/v3[[:space:]]+${HELM_VERSION}([[:space:]]|$)"
}

if ! have_version; then
  echo "helm.sh: building helm ${HELM_VERSION} into bin/ (a few minutes, once)" >&2
  ldflags="-s -w"
  ldflags+=" -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
  ldflags+=" -X helm.sh/helm/v3/internal/version.metadata="
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${K8S_MAJOR}"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${K8S_MINOR}"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${K8S_MAJOR}"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${K8S_MINOR}"
  mkdir -p "$root/bin"
  # Outside the module so the project's go.mod is neither read nor changed.
  (cd / && CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$root/bin" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}") >&2
  have_version || { echo "helm.sh: built $bin is not helm ${HELM_VERSION}" >&2; exit 1; }
fi
echo "$bin"
