package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
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
// writes, so decoding what was encoded gives back an equal value.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	*m = Metadata{}
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%w: event_metadata must be a JSON object: %v", ErrInvalid, err)
	}
	for k, v := range raw {
		if p := m.field(k); p != nil {
			var s string
			if json.Unmarshal(v, &s) == nil && s != "" {
				*p = s
				continue
			}
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, v); err != nil {
			return fmt.Errorf("%w: event_metadata %q: %v", ErrInvalid, k, err)
		}
		if m.Extra == nil {
			m.Extra = make(map[string]json.RawMessage)
		}
		m.Extra[k] = compact.Bytes()
	}
	return nil
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
