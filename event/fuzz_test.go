package event_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/neo-events/neo-events/event"
)

// fuzzEntry builds an entry from fuzz input: one `name=value` per line.
// Lines without '=' are skipped; a later line overrides an earlier one.
func fuzzEntry(input string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(input, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// fuzzInput is the inverse of fuzzEntry for seeds; values must not hold '\n'.
func fuzzInput(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(kv[i] + "=" + kv[i+1] + "\n")
	}
	return b.String()
}

func fuzzSeeds(f *testing.F) {
	full, err := populatedEvent().AppendEntry(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fuzzInput(full...))
	minimal := []string{
		"id", "0190a6f2-1111-7abc-8def-000000000001", "event_type", "users.created",
		"schema", "tenant_acme", "aggregate_id", "0190a6f2-1111-7abc-8def-000000000002",
		"aggregate_type", "user", "event_data", "{}",
	}
	f.Add(fuzzInput(minimal...))
	with := func(kv ...string) string { return fuzzInput(append(slices.Clone(minimal), kv...)...) }
	f.Add(with("created_at", "2024-05-06T07:08:09.123456+00:00", "scheduled_at", "2024-05-06 07:08:09"))
	f.Add(with("event_metadata", `{"ip_address": 1, "k": [1, {"a": null}], "user_agent": "x"}`))
	f.Add(with("event_metadata", `{"\u003c": "\u2028", "trace\u0000": 1}`))
	f.Add(with("event_data", ` {"a": "\\u0000", "b": "\u0000"}`))
	f.Add(with("created_at", "9999-12-31T23:59:59-01:00"))
	f.Add(with("schema", `tenant_a"; DROP SCHEMA admin; --`))
	f.Add(with("id", "{0190a6f2-1111-7abc-8def-000000000001}"))
	f.Add(with("max_retries", "-1", "event_version", "+7", "priority", "HIGH"))
	f.Add(with("schema", "admin", "tenant_id", "0190A6F2-1111-7ABC-8DEF-000000000009"))
	f.Add(with("aggregate_type", "\xff\xfe", "partition_key", "é"))
	f.Add(with("event_data", `{"a":"1234567é€😀","\\u0000":"\\\u0000"}`, "aggregate_type", "1234567é"))
	f.Add(with("event_data", "{\"a\":\"1234567\xed\xa0\x80\"}", "source_service", "\xc0\x80"))
	f.Add(with("event_metadata", `{"k":"\\u0000","user_agent":"é€😀\u0000"}`, "partition_key", "pk\x00"))
	f.Add(with("event_metadata", "{\"k\":\"\xe0\x80\xaf\",\"\xff\":1}", "error_message", "\x7f"))
	f.Add("")
	f.Add("=\n==\nid")
}

// FuzzDecodeEntry checks that no entry makes the decoder panic, that every
// refusal is a *FieldError naming an entry field, and that decoding is
// stable: what decodes re-encodes to an entry that decodes to the same event
// and encodes to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, input string) {
		e, err := event.DecodeEntry(fuzzEntry(input))
		if err != nil {
			checkDecodeError(t, e, err)
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("decoded event does not validate: %v", err)
		}
		checkStorableEvent(t, e)
		entry, err := e.Entry()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := event.DecodeEntry(entry)
		if err != nil {
			t.Fatalf("decode of re-encoded entry %q: %v", entry, err)
		}
		if diff := cmp.Diff(e, again); diff != "" {
			t.Fatalf("decode -> encode -> decode changed the event (-first +second):\n%s", diff)
		}
		entry2, err := again.Entry()
		if err != nil {
			t.Fatalf("re-encode again: %v", err)
		}
		if diff := cmp.Diff(entry, entry2); diff != "" {
			t.Fatalf("encoding is not stable (-first +second):\n%s", diff)
		}
	})
}

// FuzzDecodeFields: the flat pairs the worker reads decode exactly as the
// map of the same entry does, duplicate keys (the last one wins) included.
func FuzzDecodeFields(f *testing.F) {
	fuzzSeeds(f)
	f.Add("id=x\nid=0190a6f2-1111-7abc-8def-000000000002\nevent_type=a.b\n")
	f.Fuzz(func(t *testing.T, input string) {
		var kv []string
		for _, line := range strings.Split(input, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				kv = append(kv, k, v)
			}
		}
		got, gotErr := event.DecodeFields(kv)
		want, wantErr := event.DecodeEntry(fuzzEntry(input))
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("DecodeFields error %v, DecodeEntry error %v", gotErr, wantErr)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("DecodeFields differs from DecodeEntry (-map +pairs):\n%s", diff)
		}
	})
}

func checkDecodeError(t *testing.T, e *event.Event, err error) {
	t.Helper()
	if e != nil {
		t.Fatalf("event returned with error %v", err)
	}
	if !errors.Is(err, event.ErrInvalid) {
		t.Fatalf("error %v is not ErrInvalid", err)
	}
	var fe *event.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %T %v is not a *FieldError", err, err)
	}
	if !slices.Contains(event.EntryFields, fe.Field) {
		t.Fatalf("error names %q, not an entry field: %v", fe.Field, err)
	}
}

// checkStorableEvent checks, with the standard library only, what Validate
// promises PostgreSQL: JSON objects it can store as jsonb and text columns
// of valid UTF-8 without NUL, within their limits in characters.
func checkStorableEvent(t *testing.T, e *event.Event) {
	t.Helper()
	if !refStorableJSONObject(e.Data) {
		t.Fatalf("event_data %q accepted", e.Data)
	}
	if e.ErrorDetails != nil && !refStorableJSONObject(e.ErrorDetails) {
		t.Fatalf("error_details %q accepted", e.ErrorDetails)
	}
	meta, err := e.Metadata.MarshalJSON()
	if err != nil || !refStorableJSONObject(meta) {
		t.Fatalf("event_metadata %q accepted (%v)", meta, err)
	}
	for _, f := range []struct {
		v   string
		max int
	}{
		{e.AggregateType, event.MaxAggregateTypeLen}, {e.SourceService, event.MaxSourceServiceLen},
		{e.SourceVersion, event.MaxSourceVersionLen}, {e.QueueName, event.MaxQueueNameLen},
		{e.MessageID, event.MaxMessageIDLen}, {e.PartitionKey, event.MaxPartitionKeyLen},
		{e.ErrorMessage, 1 << 62},
	} {
		if !refStorableText(f.v) || utf8.RuneCountInString(f.v) > f.max {
			t.Fatalf("text %q accepted", f.v)
		}
	}
}

// FuzzValidateText: a text column is accepted exactly when it is valid
// UTF-8 without NUL and, for a varchar(n), at most n characters long.
func FuzzValidateText(f *testing.F) {
	for _, s := range []string{"user", "é", "😀", "\x00", "é\x00", "\xc0\x80", "\xed\xa0\x80", "\xff",
		strings.Repeat("x", 100), strings.Repeat("x", 101), strings.Repeat("é", 100), strings.Repeat("é", 101)} {
		f.Add(s)
	}
	base := populatedEvent()
	f.Fuzz(func(t *testing.T, s string) {
		e := *base
		e.AggregateType, e.ErrorMessage = "user", s
		if got, want := e.Validate() == nil, refStorableText(s); got != want {
			t.Fatalf("error_message %q: valid = %v, want %v", s, got, want)
		}
		e.AggregateType, e.ErrorMessage = s, ""
		want := s != "" && refStorableText(s) && utf8.RuneCountInString(s) <= event.MaxAggregateTypeLen
		if got := e.Validate() == nil; got != want {
			t.Fatalf("aggregate_type %q: valid = %v, want %v", s, got, want)
		}
	})
}
