package event_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

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

// refStorableJSON is what storableJSON must equal, built only from the
// standard library: encoding/json.Valid, utf8.Valid, and no \u0000 escape
// (a backslash pairs with the byte after it, so `\\u0000` is an escaped
// backslash followed by the text u0000, which jsonb stores).
func refStorableJSON(b []byte) bool {
	if !json.Valid(b) || !utf8.Valid(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' {
			if bytes.HasPrefix(b[i+1:], []byte("u0000")) {
				return false
			}
			i++
		}
	}
	return true
}

// refStorableJSONObject is refStorableJSON for an object.
func refStorableJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return refStorableJSON(b) && len(t) > 0 && t[0] == '{'
}

// storableEdges are byte sequences where a word-at-a-time scanner could go
// wrong; storableCases puts each at every offset around two 8-byte words,
// inside a string value, and cuts the result at every length near it.
var storableEdges = []string{
	``, `x`, `"`, `\"`, `\\`, `\\\"`, `\/`, `\u0000`, `\\u0000`, `\\\u0000`, `\u0001`, `\u00000`,
	`\u000`, `\U0000`, `\u00e9`, `\ud800`, `\udc00\ud800`, `\x`, `\`, "\x00", "\x1f", "\x7f", " ",
	"é", "€", "😀", "\uFFFD", "\xef\xbf\xbd", "\xed\x9f\xbf", // é, €, an emoji, U+FFFD, U+D7FF
	"\xed\xa0\x80", "\xed\xbf\xbf", // surrogates U+D800, U+DFFF encoded in UTF-8
	"\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xe0\x9f\xbf", "\xf0\x80\x80\xaf", "\xf0\x8f\xbf\xbf", // overlong
	"\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", // U+10FFFF, then above it
	"\xff", "\xfe", "\x80", "\xbf", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xc3\x28", "\xe2\x28\xa1",
	"é\xff", "\"\xc3", "\\\xc3\xa9", "\xc3\\u0000", "!#[]", "\x21\x5b\x5d\x5d\x23\x22\x5c\x5c",
}

func storableCases() []string {
	var out []string
	for _, edge := range storableEdges {
		for pad := range 18 {
			s := `{"k":"` + strings.Repeat("a", pad) + edge + strings.Repeat("b", 17-pad) + `"}`
			out = append(out, s, `{"`+strings.Repeat("k", pad)+edge+`":1}`)
			for cut := 6 + pad; cut <= 6+pad+len(edge)+1 && cut <= len(s); cut++ {
				out = append(out, s[:cut])
			}
		}
	}
	return out
}

func TestStorableJSONTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     bool
	}{
		{"empty object", `{}`, true},
		{"escaped NUL", `{"a":"\u0000"}`, false},
		{"escaped NUL in a key", `{"\u0000":1}`, false},
		{"escaped backslash then u0000", `{"a":"\\u0000"}`, true},
		{"three backslashes then u0000", `{"a":"\\\u0000"}`, false},
		{"escaped NUL at the end of a word", `{"a":"xx\u0000"}`, false},
		{"\\u0001", `{"a":"\u0001"}`, true},
		{"raw NUL", "{\"a\":\"\x00\"}", false},
		{"multi-byte split across a word", `{"a":"abcdefghi` + "é€😀" + `"}`, true},
		{"4-byte rune at a word's last byte", `{"a":"1` + "😀" + `"}`, true},
		{"overlong slash", "{\"a\":\"\xc0\xaf\"}", false},
		{"overlong 3-byte", "{\"a\":\"abcdefgh\xe0\x80\xaf\"}", false},
		{"surrogate in UTF-8", "{\"a\":\"\xed\xa0\x80\"}", false},
		{"escaped surrogate (jsonb takes it)", `{"a":"\ud800"}`, true},
		{"above U+10FFFF", "{\"a\":\"\xf4\x90\x80\x80\"}", false},
		{"truncated rune before the quote", "{\"a\":\"\xe2\x82\"}", false},
		{"invalid UTF-8 in a key", "{\"\xff\":1}", false},
		{"non-ASCII outside strings", "{\"a\":1}\xc2\xa0", false},
		{"backslash at the end", `{"a":"\`, false},
		{"\\u at the end", `{"a":"\u00`, false},
		{"U+FFFD itself", `{"a":"` + "\uFFFD" + `"}`, true},
		{"array", `[1]`, false},
		{"leading whitespace", " \n\t{\"a\":\"é\"}\r", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := []byte(tt.in)
			if want := refStorableJSONObject(in); want != tt.want {
				t.Fatalf("reference says %v, the table %v", want, tt.want)
			}
			if got := event.StorableJSONObject(in); got != tt.want {
				t.Errorf("StorableJSONObject(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestStorableJSONAgreesWithReference(t *testing.T) {
	t.Parallel()
	for _, in := range slices.Concat(jsonCases, deepJSON, storableCases()) {
		checkStorable(t, []byte(in))
	}
}

func checkStorable(t *testing.T, in []byte) {
	t.Helper()
	if got, want := event.ValidJSON(in), json.Valid(in); got != want {
		t.Errorf("ValidJSON(%.80q) = %v, encoding/json says %v", in, got, want)
	}
	if got, want := event.StorableJSONFused(in), refStorableJSON(in); got != want {
		t.Errorf("storableJSON(%.80q) = %v, reference says %v", in, got, want)
	}
	if got, want := event.StorableJSONObject(in), refStorableJSONObject(in); got != want {
		t.Errorf("storableJSONObject(%.80q) = %v, reference says %v", in, got, want)
	}
}

// FuzzStorableJSON: the fused validator accepts exactly what
// encoding/json.Valid, utf8.Valid and the \u0000 check accept together.
func FuzzStorableJSON(f *testing.F) {
	for _, in := range slices.Concat(jsonCases, storableCases()) {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkStorable(t, in) })
}

// BenchmarkStorableJSON is the fused check against the three passes it
// replaced, on a typical event_data object.
func BenchmarkStorableJSON(b *testing.B) {
	in := []byte(`{"bench":true,"n":12,"pad":"` + strings.Repeat("x", 220) + `"}`)
	b.Run("fused", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if !event.StorableJSONObject(in) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("three_passes", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if !event.ValidJSON(in) || !event.StorableJSON(in) {
				b.Fatal("invalid")
			}
		}
	})
}
