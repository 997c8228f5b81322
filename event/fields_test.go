package event_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neo-events/neo-events/event"
)

// lastWins is the map go-redis (or a shell client) makes of a pair list.
func lastWins(pairs []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

// requireSameDecode checks that DecodeFields(pairs) decodes to what
// DecodeEntry makes of the same fields, or fails with the same error.
func requireSameDecode(t *testing.T, pairs []string) {
	t.Helper()
	want, wantErr := event.DecodeEntry(lastWins(pairs))
	got, err := event.DecodeFields(pairs)
	if (wantErr == nil) != (err == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("DecodeFields error %v, DecodeEntry error %v", err, wantErr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("DecodeFields differs from DecodeEntry (-want +got):\n%s", diff)
	}
}

func TestDecodeFieldsAgreesWithDecodeEntry(t *testing.T) {
	t.Parallel()
	full, err := populatedEvent().AppendEntry(nil)
	if err != nil {
		t.Fatal(err)
	}
	minimal := []string{
		"id", "0190a6f2-1111-7abc-8def-000000000001", "event_type", "users.created",
		"schema", "tenant_acme", "aggregate_id", "0190a6f2-1111-7abc-8def-000000000002",
		"aggregate_type", "user", "event_data", "{}",
	}
	with := func(base []string, kv ...string) []string { return append(slices.Clone(base), kv...) }
	// Every field first with a value that would fail, then the good one.
	var shadowed []string
	for i := 0; i < len(full); i += 2 {
		shadowed = append(shadowed, full[i], "\xffbad")
	}
	shadowed = append(shadowed, full...)
	reversed := slices.Clone(full)
	for i, j := 0, len(reversed)-2; i < j; i, j = i+2, j-2 {
		reversed[i], reversed[i+1], reversed[j], reversed[j+1] = reversed[j], reversed[j+1], reversed[i], reversed[i+1]
	}
	tests := []struct {
		name  string
		pairs []string
	}{
		{"fully populated", full},
		{"fields in reverse order", reversed},
		{"minimal", minimal},
		{"every field repeated: last wins", shadowed},
		{"a good value then a bad one: last wins", with(full, "id", "nope")},
		{"unknown fields are ignored", with(minimal, "error_message", "x", "", "", "redrive_count", "2")},
		{"trailing field without value", with(minimal, "priority")},
		{"empty optional fields", with(minimal, "priority", "", "correlation_id", "", "event_metadata", "")},
		{"empty required field", with(minimal, "schema", "")},
		{"missing required field", minimal[2:]},
		{"bad uuid", with(minimal, "causation_id", "x")},
		{"bad int", with(minimal, "max_retries", "many")},
		{"bad time", with(minimal, "created_at", "yesterday")},
		{"metadata not an object", with(minimal, "event_metadata", "[1]")},
		{"event_data not JSON", with(minimal, "event_data", "{")},
		{"nothing", nil},
		{"one key only", []string{"id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireSameDecode(t, tt.pairs)
		})
	}
}

// FuzzDecodeFields: whatever the pairs, in whatever order and with whatever
// repetitions, DecodeFields agrees with DecodeEntry on the last-wins map.
func FuzzDecodeFields(f *testing.F) {
	fuzzSeeds(f)
	f.Add("id=1\nid=0190a6f2-1111-7abc-8def-000000000001\nschema=admin\nschema=\n")
	f.Fuzz(func(t *testing.T, input string) {
		var pairs []string
		for _, line := range strings.Split(input, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				pairs = append(pairs, k, v)
			}
		}
		requireSameDecode(t, pairs)
	})
}

// BenchmarkDecodeFieldsTypical decodes the pairs an XREADGROUP reply
// carries, as the worker does for every entry it reads (compare
// BenchmarkDecodeValuesTypical, the go-redis map form).
func BenchmarkDecodeFieldsTypical(b *testing.B) {
	pairs, err := typicalEvent(b).AppendEntry(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.DecodeFields(pairs); err != nil {
			b.Fatal(err)
		}
	}
}
