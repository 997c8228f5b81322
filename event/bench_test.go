package event_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/neo-events/neo-events/event"
)

// typicalEvent is what a worker sees most: a tenant event with a 256-byte
// event_data object, a correlation id and no metadata (the bench's shape).
func typicalEvent(b *testing.B) *event.Event {
	b.Helper()
	data := json.RawMessage(`{"bench":true,"n":12,"pad":"` + strings.Repeat("x", 220) + `"}`)
	e, err := event.New("tenant_acme", "users.created", "user", uuid.MustParse("0190a6f2-1111-7abc-8def-000000000002"), data)
	if err != nil {
		b.Fatal(err)
	}
	e.CorrelationID = uuid.MustParse("0190a6f2-1111-7abc-8def-000000000003")
	return e
}

func benchEntries(b *testing.B) map[string]*event.Event {
	return map[string]*event.Event{"typical": typicalEvent(b), "populated": populatedEvent()}
}

// BenchmarkDecodeEntry decodes (and validates) an entry from a string map.
func BenchmarkDecodeEntry(b *testing.B) {
	for name, e := range benchEntries(b) {
		b.Run(name, func(b *testing.B) {
			m, err := e.Entry()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := event.DecodeEntry(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeValuesTypical decodes the map go-redis returns, as the
// worker does for every entry it reads.
func BenchmarkDecodeValuesTypical(b *testing.B) {
	m, err := typicalEvent(b).Entry()
	if err != nil {
		b.Fatal(err)
	}
	values := make(map[string]any, len(m))
	for k, v := range m {
		values[k] = v
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.DecodeValues(values); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate checks a decoded event, as the publisher does for every
// event it accepts and the worker for every entry it decodes.
func BenchmarkValidate(b *testing.B) {
	for name, e := range benchEntries(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := e.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
