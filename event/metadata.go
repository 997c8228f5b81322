package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"
)

// Metadata keys with a fixed meaning in event_metadata.
const (
	MetaIPAddress   = "ip_address"
	MetaUserAgent   = "user_agent"
	MetaRequestID   = "request_id"
	MetaTraceParent = "traceparent" // W3C Trace Context
	MetaTraceState  = "tracestate"  // W3C Trace Context
)

// Metadata is event_metadata: the request context that produced the event
// plus free-form fields. It encodes to a JSON object with the known keys first
// (in the order above) and the extra keys sorted, so equal metadata always
// encodes to equal bytes.
type Metadata struct {
	IPAddress   string
	UserAgent   string
	RequestID   string
	TraceParent string
	TraceState  string
	// Extra holds every other key, each value as raw JSON.
	Extra map[string]json.RawMessage
}

// IsZero reports whether no field is set.
func (m Metadata) IsZero() bool {
	return m.IPAddress == "" && m.UserAgent == "" && m.RequestID == "" &&
		m.TraceParent == "" && m.TraceState == "" && len(m.Extra) == 0
}

// Set stores a value, JSON-encoded. A non-empty string under a known key
// sets that field, so the value reads back the same after a JSON round trip.
func (m *Metadata) Set(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("metadata %q: %w", key, err)
	}
	if p := m.field(key); p != nil {
		// A known key lives in one place only, or MarshalJSON would drop one copy.
		*p = ""
		if s, ok := v.(string); ok && s != "" {
			*p = s
			delete(m.Extra, key)
			return nil
		}
	}
	if m.Extra == nil {
		m.Extra = make(map[string]json.RawMessage)
	}
	m.Extra[key] = b
	return nil
}

// field returns the struct field of a known key, or nil.
func (m *Metadata) field(key string) *string {
	switch key {
	case MetaIPAddress:
		return &m.IPAddress
	case MetaUserAgent:
		return &m.UserAgent
	case MetaRequestID:
		return &m.RequestID
	case MetaTraceParent:
		return &m.TraceParent
	case MetaTraceState:
		return &m.TraceState
	}
	return nil
}

func (m Metadata) known() [5]struct{ k, v string } {
	return [5]struct{ k, v string }{
		{MetaIPAddress, m.IPAddress}, {MetaUserAgent, m.UserAgent}, {MetaRequestID, m.RequestID},
		{MetaTraceParent, m.TraceParent}, {MetaTraceState, m.TraceState},
	}
}

// MarshalJSON encodes the metadata as one JSON object.
func (m Metadata) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	n := 0
	sep := func() {
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
	}
	taken := map[string]bool{}
	for _, kv := range m.known() {
		if kv.v == "" {
			continue
		}
		taken[kv.k] = true
		sep()
		k, _ := json.Marshal(kv.k)
		v, _ := json.Marshal(kv.v)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	keys := make([]string, 0, len(m.Extra))
	for k := range m.Extra {
		if !taken[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw := m.Extra[k]
		if !json.Valid(raw) {
			return nil, fmt.Errorf("metadata %q: value is not valid JSON", k)
		}
		sep()
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("metadata %q: %w", k, err)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON decodes a JSON object; null decodes to empty metadata. A
// known key holding something other than a string is kept in Extra, so no
// data is dropped. Extra values are stored compacted, the form MarshalJSON
// writes, so decoding what was encoded gives back an equal value. As with
// encoding/json, a key that appears twice takes its last value.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	*m = Metadata{}
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	if !isJSONObject(b) {
		// Let encoding/json say what is wrong.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("%w: event_metadata must be a JSON object: %v", ErrInvalid, err)
		}
		return fmt.Errorf("%w: event_metadata must be a JSON object", ErrInvalid)
	}
	m.decodeObject(b)
	return nil
}

// decodeObject fills m from the valid JSON object b, giving what
// json.Unmarshal into a map[string]json.RawMessage followed by a
// json.Compact of each value gives (FuzzMetadataUnmarshal compares them),
// without reflection and with one allocation for all the Extra values
// instead of a map entry, a RawMessage and a buffer each.
func (m *Metadata) decodeObject(b []byte) {
	var buf []byte
	i := skipSpace(b, skipSpace(b, 0)+1) // after '{'
	for i < len(b) && b[i] == '"' {
		end := scanString(b, i, false)
		key := unquote(b[i:end])
		i = skipSpace(b, skipSpace(b, end)+1) // after ':'
		end = valueEnd(b, i)
		m.set(key, b[i:end], &buf, len(b))
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	if len(m.Extra) == 0 {
		m.Extra = nil // a known key moved out of Extra again; encoding/json leaves nil
	}
}

// set stores the valid JSON value v under key, as the map loop of
// encoding/json would, compacting Extra values into buf, which it allocates
// with room for size bytes: the length of the object, which no compacted
// value can outgrow.
func (m *Metadata) set(key string, v []byte, buf *[]byte, size int) {
	if p := m.field(key); p != nil {
		if v[0] == '"' {
			if s := unquote(v); s != "" {
				*p = s
				delete(m.Extra, key)
				return
			}
		}
		*p = "" // a later value of a key replaces an earlier one
	}
	if m.Extra == nil {
		m.Extra = make(map[string]json.RawMessage)
	}
	if *buf == nil {
		*buf = make([]byte, 0, size)
	}
	n := len(*buf)
	*buf = appendCompact(*buf, v)
	m.Extra[key] = (*buf)[n:len(*buf):len(*buf)]
}

// unquote decodes the valid JSON string q (quotes included) as encoding/json
// does. Without escapes and with valid UTF-8 that is the bytes inside the
// quotes; anything else goes to encoding/json, which replaces invalid UTF-8
// and lone surrogates with U+FFFD.
func unquote(q []byte) string {
	inner := q[1 : len(q)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return string(inner) // unreachable: q is a valid JSON string
	}
	return s
}

// valueEnd returns the index after the JSON value starting at b[i] in the
// valid JSON text b.
func valueEnd(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = scanString(b, i, false)
			if depth == 0 || i < 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth <= 1 {
				return i + depth // a scalar ends before the bracket, a container after
			}
			depth--
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// appendCompact appends the valid JSON value v without the whitespace
// outside its strings, as json.Compact does.
func appendCompact(dst, v []byte) []byte {
	for i := 0; i < len(v); {
		switch c := v[i]; {
		case c == '"':
			end := scanString(v, i, false)
			dst = append(dst, v[i:end]...)
			i = end
		case isSpace(c):
			i++
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

// validate checks that PostgreSQL can store the metadata as jsonb.
func (m Metadata) validate() error {
	for _, kv := range m.known() {
		if !StorableText(kv.v) {
			return fmt.Errorf("%s must be UTF-8 without NUL bytes", kv.k)
		}
	}
	for k, v := range m.Extra {
		if !StorableText(k) {
			return fmt.Errorf("key %q must be UTF-8 without NUL bytes", truncate(k))
		}
		if !storableJSON(v) {
			return fmt.Errorf("%q is not JSON PostgreSQL can store (UTF-8, no \\u0000)", truncate(k))
		}
	}
	return nil
}
