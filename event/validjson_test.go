package event_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/neo-events/neo-events/event"
)

// jsonCases are inputs where a hand-written validator could differ from
// encoding/json: every grammar corner, whitespace, escapes, numbers,
// nesting depth, bytes that are not UTF-8.
var jsonCases = []string{
	``, ` `, `{}`, ` {} `, "\t{\n}\r\n", `{`, `}`, `{}}`, `{} {}`, `{},`, `[]`, `[`, `]`, `[]]`, `[}`, `{]`,
	`{"a":1}`, `{"a" : 1 }`, `{"a":1,}`, `{,"a":1}`, `{"a":1,"b":2}`, `{"a":1 "b":2}`, `{"a"}`, `{"a":}`,
	`{a:1}`, `{'a':1}`, `{1:1}`, `{"a":[1,2,{"b":null}],"c":{}}`, `[1,]`, `[,1]`, `[1 2]`, `[[[]]]`,
	`"x"`, `"x`, `"\"`, `"\\"`, `"\/\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u12"`, `"\x"`,
	`"\'"`, "\"\x01\"", "\"\x1f\"", "\"\x7f\"", "\"\xff\xfe\"", "{\"\xc3\":\"\xe9\"}", "\"\t\"", `"\u0000"`,
	`0`, `-0`, `01`, `-01`, `1.`, `1.0`, `.5`, `-`, `+1`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e10`,
	`123456789012345678901234567890`, `1.5.5`, `0x10`, `Infinity`, `NaN`, `1 `, ` 1`,
	`true`, `false`, `null`, `tru`, `nul`, `truee`, `True`, `NULL`, `[true,false,null]`, `{"a":tru}`,
	"\xef\xbb\xbf{}", "{}\x00", "\x00", `{"a":1}x`, `{"a":"\ud800"}`, strings.Repeat("[", 200),
}

// deepJSON are the nesting limit's edges: too big to be good fuzz seeds.
var deepJSON = []string{
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	strings.Repeat("[", 9999) + "{}" + strings.Repeat("]", 9999),
	strings.Repeat("[", 10000) + "{}" + strings.Repeat("]", 10000),
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range append(jsonCases[:len(jsonCases):len(jsonCases)], deepJSON...) {
		if got, want := event.ValidJSON([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("ValidJSON(%.60q) = %v, encoding/json says %v", in, got, want)
		}
	}
}

// FuzzValidJSON: the hand-written validator accepts exactly what
// encoding/json.Valid accepts.
func FuzzValidJSON(f *testing.F) {
	for _, in := range jsonCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := event.ValidJSON(in), json.Valid(in); got != want {
			t.Fatalf("ValidJSON(%q) = %v, encoding/json says %v", in, got, want)
		}
	})
}

// BenchmarkValidJSON compares the validator with encoding/json on a
// typical event_data object.
func BenchmarkValidJSON(b *testing.B) {
	in := []byte(`{"user":{"id":7,"email":"ada@example.com","roles":["admin","owner"]},"amount":12.5,` +
		`"ok":true,"note":null,"pad":"` + strings.Repeat("x", 160) + `"}`)
	b.Run("event", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if !event.ValidJSON(in) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if !json.Valid(in) {
				b.Fatal("invalid")
			}
		}
	})
}
