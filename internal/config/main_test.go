package config_test

import (
	"os"
	"strings"
	"testing"
)

// TestMain clears NEO_EVENTS_* from the environment: `make test` exports
// the demo's connection settings, and these tests must see only what they
// set themselves.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "NEO_EVENTS_") {
			_ = os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}
