package event_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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

// BenchmarkDecodeFieldsTypical decodes the flat pairs the worker's read
// connection returns (internal/xread), as the worker does for every entry.
func BenchmarkDecodeFieldsTypical(b *testing.B) {
	kv, err := typicalEvent(b).AppendEntry(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.DecodeFields(kv); err != nil {
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

// BenchmarkAppendEntryShapes encodes an entry for XADD, as the publisher does for
// every event it streams (dst reused, as the publisher's scratch is).
func BenchmarkAppendEntryShapes(b *testing.B) {
	for name, e := range benchEntries(b) {
		b.Run(name, func(b *testing.B) {
			dst := make([]string, 0, 2*len(event.EntryFields))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = e.AppendEntry(dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNew makes a fresh event (id, defaults, validation), as every
// producer does before publishing.
func BenchmarkNew(b *testing.B) {
	data := json.RawMessage(`{"bench":true,"n":12,"pad":"` + strings.Repeat("x", 220) + `"}`)
	agg := uuid.MustParse("0190a6f2-1111-7abc-8def-000000000002")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.New("tenant_acme", "users.created", "user", agg, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFormatTime formats a timestamp as entries carry it.
func BenchmarkFormatTime(b *testing.B) {
	t := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		_ = event.FormatTime(t)
	}
}

// BenchmarkNewID compares NewID with uuid.NewV7, which it used to call
// (one crypto/rand read per id).
func BenchmarkNewID(b *testing.B) {
	b.Run("event.NewID", func(b *testing.B) {
		for b.Loop() {
			if _, err := event.NewID(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uuid.NewV7", func(b *testing.B) {
		for b.Loop() {
			if _, err := uuid.NewV7(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
