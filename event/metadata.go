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

// Set stores a free-form value, JSON-encoded.
func (m *Metadata) Set(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("metadata %q: %w", key, err)
	}
	if m.Extra == nil {
		m.Extra = make(map[string]json.RawMessage)
	}
	m.Extra[key] = b
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
// data is dropped.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	*m = Metadata{}
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%w: event_metadata must be a JSON object: %v", ErrInvalid, err)
	}
	dst := map[string]*string{
		MetaIPAddress: &m.IPAddress, MetaUserAgent: &m.UserAgent, MetaRequestID: &m.RequestID,
		MetaTraceParent: &m.TraceParent, MetaTraceState: &m.TraceState,
	}
	for k, v := range raw {
		if p, ok := dst[k]; ok {
			var s string
			if json.Unmarshal(v, &s) == nil && s != "" {
				*p = s
				continue
			}
		}
		if m.Extra == nil {
			m.Extra = make(map[string]json.RawMessage)
		}
		m.Extra[k] = v
	}
	return nil
}
