package event_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
)

func TestMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   event.Metadata
		want string // exact bytes of MarshalJSON
	}{
		{"empty", event.Metadata{}, `{}`},
		{"known keys in fixed order", event.Metadata{
			TraceState: "ts", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			RequestID: "req-1", UserAgent: "curl/8", IPAddress: "203.0.113.7",
		}, `{"ip_address":"203.0.113.7","user_agent":"curl/8","request_id":"req-1",` +
			`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"ts"}`},
		{"extra of every JSON kind, sorted", event.Metadata{
			RequestID: "r",
			Extra: map[string]json.RawMessage{
				"string": json.RawMessage(`"s"`),
				"number": json.RawMessage(`-1.5e3`),
				"int":    json.RawMessage(`42`),
				"true":   json.RawMessage(`true`),
				"false":  json.RawMessage(`false`),
				"null":   json.RawMessage(`null`),
				"array":  json.RawMessage(`[1,"two",{"three":3}]`),
				"object": json.RawMessage(`{"nested":{"deep":[]}}`),
				"ünï":    json.RawMessage(`"çödé"`),
			},
		}, `{"request_id":"r","array":[1,"two",{"three":3}],"false":false,"int":42,"null":null,` +
			`"number":-1.5e3,"object":{"nested":{"deep":[]}},"string":"s","true":true,"ünï":"çödé"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(b))

			var got event.Metadata
			require.NoError(t, json.Unmarshal(b, &got))
			if diff := cmp.Diff(tt.in, got); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			require.Equal(t, tt.in.IsZero(), got.IsZero())
		})
	}
}

func TestMetadataDeterministicBytes(t *testing.T) {
	t.Parallel()
	// Go randomizes map iteration, so many fresh maps exercise many orders.
	var first string
	for i := 0; i < 50; i++ {
		m := event.Metadata{IPAddress: "10.0.0.1", Extra: map[string]json.RawMessage{}}
		for j := 0; j < 20; j++ {
			m.Extra[fmt.Sprintf("k%02d", (j*7+i)%20)] = json.RawMessage(fmt.Sprintf(`{"v": %d}`, (j*7+i)%20))
		}
		b, err := m.MarshalJSON()
		require.NoError(t, err)
		if i == 0 {
			first = string(b)
			continue
		}
		require.Equal(t, first, string(b), "iteration %d", i)
	}
	require.Contains(t, first, `"k00":{"v":0},"k01":{"v":1}`, "extras compacted and sorted")
}

func TestMetadataUnmarshal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want event.Metadata
	}{
		{"null", `null`, event.Metadata{}},
		{"null with spaces", " null\n", event.Metadata{}},
		{"empty object", `{}`, event.Metadata{}},
		{"known string", `{"ip_address":"1.2.3.4"}`, event.Metadata{IPAddress: "1.2.3.4"}},
		{"known key non-string kept in Extra", `{"ip_address":17,"user_agent":{"a":1},"request_id":null}`,
			event.Metadata{Extra: map[string]json.RawMessage{
				"ip_address": json.RawMessage(`17`),
				"user_agent": json.RawMessage(`{"a":1}`),
				"request_id": json.RawMessage(`null`),
			}}},
		{"known key empty string kept in Extra", `{"tracestate":""}`,
			event.Metadata{Extra: map[string]json.RawMessage{"tracestate": json.RawMessage(`""`)}}},
		{"extra compacted", `{ "k" : [ 1 , { "a" : 2 } ] }`,
			event.Metadata{Extra: map[string]json.RawMessage{"k": json.RawMessage(`[1,{"a":2}]`)}}},
		{"escaped known value", `{"user_agent":"a\"b\u00e9"}`, event.Metadata{UserAgent: `a"bé`}},
		{"duplicate key, last wins", `{"k":1,"k":2}`,
			event.Metadata{Extra: map[string]json.RawMessage{"k": json.RawMessage(`2`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := event.Metadata{IPAddress: "stale", Extra: map[string]json.RawMessage{"stale": nil}}
			require.NoError(t, json.Unmarshal([]byte(tt.in), &got))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
			// What was decoded encodes and decodes back to the same value.
			b, err := got.MarshalJSON()
			require.NoError(t, err)
			var again event.Metadata
			require.NoError(t, again.UnmarshalJSON(b))
			if diff := cmp.Diff(got, again); diff != "" {
				t.Fatalf("second round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMetadataRefusesNonObject(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`[]`, `"s"`, `1`, `true`, ``, `{`, `{"a":}`, `{"a":1}x`} {
		var m event.Metadata
		err := m.UnmarshalJSON([]byte(in))
		require.ErrorIs(t, err, event.ErrInvalid, "%q", in)
	}
}

func TestMetadataMarshalRefusesInvalidExtra(t *testing.T) {
	t.Parallel()
	m := event.Metadata{Extra: map[string]json.RawMessage{"bad": json.RawMessage(`{nope}`)}}
	_, err := m.MarshalJSON()
	require.ErrorContains(t, err, `"bad"`)
}

func TestMetadataSet(t *testing.T) {
	t.Parallel()
	var m event.Metadata
	require.NoError(t, m.Set("plan", "pro"))
	require.NoError(t, m.Set("seats", 5))
	require.NoError(t, m.Set("tags", []string{"a", "b"}))
	require.NoError(t, m.Set(event.MetaRequestID, "req-9"))
	require.NoError(t, m.Set(event.MetaIPAddress, "1.2.3.4"))
	require.NoError(t, m.Set(event.MetaIPAddress, 7)) // non-string: moves to Extra
	require.Error(t, m.Set("bad", func() {}))

	want := event.Metadata{
		RequestID: "req-9",
		Extra: map[string]json.RawMessage{
			"plan":       json.RawMessage(`"pro"`),
			"seats":      json.RawMessage(`5`),
			"tags":       json.RawMessage(`["a","b"]`),
			"ip_address": json.RawMessage(`7`),
		},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	b, err := m.MarshalJSON()
	require.NoError(t, err)
	var back event.Metadata
	require.NoError(t, back.UnmarshalJSON(b))
	if diff := cmp.Diff(m, back); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
}

// refUnmarshalMetadata is Metadata.UnmarshalJSON as it was written on top of
// encoding/json, the reference the hand-written decoder must equal.
func refUnmarshalMetadata(b []byte) (event.Metadata, error) {
	var m event.Metadata
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return m, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return m, fmt.Errorf("%w: event_metadata must be a JSON object: %v", event.ErrInvalid, err)
	}
	for k, v := range raw {
		var p *string
		switch k {
		case event.MetaIPAddress:
			p = &m.IPAddress
		case event.MetaUserAgent:
			p = &m.UserAgent
		case event.MetaRequestID:
			p = &m.RequestID
		case event.MetaTraceParent:
			p = &m.TraceParent
		case event.MetaTraceState:
			p = &m.TraceState
		}
		if p != nil {
			var s string
			if json.Unmarshal(v, &s) == nil && s != "" {
				*p = s
				continue
			}
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, v); err != nil {
			return m, fmt.Errorf("%w: event_metadata %q: %v", event.ErrInvalid, k, err)
		}
		if m.Extra == nil {
			m.Extra = make(map[string]json.RawMessage)
		}
		m.Extra[k] = compact.Bytes()
	}
	return m, nil
}

// metadataCases are where a hand-written decoder could part from
// encoding/json: duplicates, escaped keys, invalid UTF-8, whitespace.
var metadataCases = []string{
	`{}`, ` { } `, `null`, " null\n", `[]`, `""`, `1`, `{`, `{"a":}`, `{"a":1}x`, `{"a":1,}`,
	`{"ip_address":"1.2.3.4","user_agent":"ua","request_id":"r","traceparent":"t","tracestate":"s"}`,
	`{"ip_address":"a","ip_address":1}`, `{"ip_address":1,"ip_address":"a"}`, `{"ip_address":"a","ip_address":""}`,
	`{"ip_address":1,"ip_address":"a","k":2}`, `{"k":1,"k":[2]}`, `{"ip\u005faddress":"x"}`, `{"\u006b":1,"k":2}`,
	`{"user_agent":"a\"b\u00e9\/"}`, `{"user_agent":"\ud800"}`, `{"user_agent":"\ud83d\ude00x"}`,
	"{\"user_agent\":\"\xff\"}", "{\"\xff\":1,\"\xef\xbf\xbd\":2}", "{\"k\xed\xa0\x80\":\"\xc0\xaf\"}",
	`{"user_agent":null,"request_id":true,"traceparent":{"a":"b"},"tracestate":[1]}`,
	" {\t\"k\" :\r[ 1 ,\n{ \"a b\" : \" x , ] } \" } ] , \"n\":-1.5e3 , \"t\" : true }\n",
	`{"k":"\u0000","\u0000":1}`, `{"k":{"a":{"b":[[],{}]}},"s":"}]"}`, `{"":""}`, `{"request_id":""}`,
}

func TestMetadataDecoderMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range metadataCases {
		checkMetadataDecoder(t, []byte(in))
	}
}

func checkMetadataDecoder(t *testing.T, in []byte) {
	t.Helper()
	var got event.Metadata
	gotErr := got.UnmarshalJSON(in)
	want, wantErr := refUnmarshalMetadata(in)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("UnmarshalJSON(%q): error %v, reference %v", in, gotErr, wantErr)
	}
	if gotErr != nil {
		require.ErrorIs(t, gotErr, event.ErrInvalid)
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("UnmarshalJSON(%q) (-reference +got):\n%s", in, diff)
	}
}

// FuzzMetadataUnmarshal: the hand-written decoder gives what
// encoding/json gives, value and error alike.
func FuzzMetadataUnmarshal(f *testing.F) {
	for _, in := range slices.Concat(metadataCases, jsonCases) {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkMetadataDecoder(t, in) })
}
