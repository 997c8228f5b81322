package chartcheck

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	chartDir  = "../helm/neo-events-worker"
	release   = "orders"
	namespace = "neo-events"
)

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helm returns the pinned helm binary, building it on first use. Under
// -short the caller is skipped: the build takes minutes on a small machine.
func helm(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("chart checks need the pinned helm binary; skipped with -short")
	}
	helmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", "../../scripts/helm.sh")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			helmErr = fmt.Errorf("scripts/helm.sh: %w\n%s", err, stderr.String())
			return
		}
		helmPath = strings.TrimSpace(string(out))
	})
	require.NoError(t, helmErr)
	return helmPath
}

// valueSet is one way of installing the chart: the default values plus files.
type valueSet struct {
	name  string
	files []string
}

// valueSets are the default values and every ci/*-values.yaml of the chart.
func valueSets(t *testing.T) []valueSet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "the chart must ship ci/*-values.yaml (at least one turning every option on)")
	sort.Strings(files)
	sets := []valueSet{{name: "default"}}
	for _, f := range files {
		sets = append(sets, valueSet{name: strings.TrimSuffix(filepath.Base(f), "-values.yaml"), files: []string{f}})
	}
	return sets
}

func (v valueSet) args() []string {
	var args []string
	for _, f := range v.files {
		args = append(args, "-f", f)
	}
	return args
}

// runHelm runs helm and returns stdout, or an error carrying stderr.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	// Find (or build: minutes on a fresh clone) helm before the clock for
	// this one command starts.
	bin := helm(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Keep helm away from the user's repositories and caches.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// render is `helm template` of the chart with the value set and extra args.
func render(t *testing.T, v valueSet, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"template", release, chartDir, "--namespace", namespace}, v.args()...)
	return runHelm(t, append(args, extra...)...)
}

func TestHelmLint(t *testing.T) {
	for _, v := range valueSets(t) {
		t.Run(v.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir, "--namespace", namespace}, v.args()...)
			out, err := runHelm(t, args...)
			require.NoError(t, err)
			require.Contains(t, out, "0 chart(s) failed")
		})
	}
}

func TestHelmTemplate(t *testing.T) {
	for _, v := range valueSets(t) {
		t.Run(v.name, func(t *testing.T) {
			out, err := render(t, v)
			require.NoError(t, err)
			objs, err := decodeManifests(out)
			require.NoError(t, err)
			require.NotEmpty(t, objs)
		})
	}
}

// TestHelmRefusesBadValues shows the chart stops a bad install at render
// time, with a message that names the value, instead of a crash-looping pod.
func TestHelmRefusesBadValues(t *testing.T) {
	cases := []struct {
		name string
		set  []string
		want string
	}{
		{"unknown worker key", []string{"config.worker.bogus=1"}, "bogus"},
		{"url in the config file", []string{"config.postgres.url=postgres://u:secret@db/x"}, "postgres"},
		{"unparseable duration", []string{"config.worker.shutdown_timeout=1.5m"}, "shutdown_timeout"},
		{"bad subscription", []string{"config.worker.subscriptions={users}"}, "subscriptions"},
		{"no postgres secret", []string{"postgres.existingSecret="}, "existingSecret"},
		{"no redis at all", []string{"redis.existingSecret="}, "redis.existingSecret"},
		{"group with a colon", []string{"group=a:b"}, "group"},
		{"http without port", []string{"config.http.addr=localhost"}, "addr"},
		{"grace margin too small", []string{"shutdownGraceExtraSeconds=1"}, "shutdownGraceExtraSeconds"},
		{"prometheus trigger at zero", []string{"autoscaling.keda.enabled=true", "autoscaling.keda.minReplicaCount=0"}, "cannot wake"},
		{"redis-streams without streams", []string{"autoscaling.keda.enabled=true", "autoscaling.keda.trigger=redis-streams"}, "redisStreams.streams"},
		{"unknown trigger", []string{"autoscaling.keda.enabled=true", "autoscaling.keda.trigger=cpu"}, "trigger"},
		{"hpa without cpu request", []string{"autoscaling.hpa.enabled=true", "resources.requests=null"}, "requests.cpu"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			for _, s := range tc.set {
				extra = append(extra, "--set", s)
			}
			_, err := render(t, valueSet{name: tc.name}, extra...)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
