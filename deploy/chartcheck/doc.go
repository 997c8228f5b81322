// Package chartcheck holds the tests of the worker's Helm chart in
// deploy/helm/neo-events-worker. They build the pinned helm once
// (scripts/helm.sh, cached in bin/), run `helm lint --strict` and
// `helm template` on the default values and on every ci/*-values.yaml,
// decode every rendered manifest strictly (unknown or duplicate fields are
// errors) into the Kubernetes API types of the pinned k8s.io/api or into the
// documented fields of the KEDA and Prometheus Operator CRDs, load the
// rendered worker.yaml through internal/config, and check that every metric
// an alert, a dashboard panel or the KEDA query uses is one the worker
// exports. `go test -short` skips them (they need the helm binary).
//
// The package has no non-test code: the Kubernetes and PromQL dependencies
// stay out of every binary.
package chartcheck
