package event_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
)

// populatedEvent sets every field a stream entry carries to a non-empty,
// distinct value: an admin event with tenant and organization ids.
func populatedEvent() *event.Event {
	return &event.Event{
		ID:             uuid.MustParse("0190a6f2-1111-7abc-8def-000000000001"),
		EventType:      "users.password_reset",
		Schema:         "admin",
		AggregateID:    uuid.MustParse("0190a6f2-1111-7abc-8def-000000000002"),
		AggregateType:  "user",
		EventVersion:   2,
		CorrelationID:  uuid.MustParse("0190a6f2-1111-7abc-8def-000000000003"),
		CausationID:    uuid.MustParse("0190a6f2-1111-7abc-8def-000000000004"),
		Data:           json.RawMessage(`{"email":"ada@example.com","attempts":[1,2],"ok":true}`),
		Status:         event.StatusPending,
		Priority:       event.PriorityVeryHigh,
		ScheduledAt:    time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC),
		MaxRetries:     5,
		TenantID:       uuid.MustParse("0190a6f2-1111-7abc-8def-000000000005"),
		OrganizationID: uuid.MustParse("0190a6f2-1111-7abc-8def-000000000006"),
		UserID:         uuid.MustParse("0190a6f2-1111-7abc-8def-000000000007"),
		SourceService:  "identity-api",
		SourceVersion:  "1.4.2",
		PartitionKey:   "org-42",
		CreatedAt:      time.Date(2024, 5, 6, 7, 8, 10, 1000, time.UTC),
		Metadata: event.Metadata{
			IPAddress:   "203.0.113.7",
			UserAgent:   "Mozilla/5.0",
			RequestID:   "req-77",
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			TraceState:  "vendor=1",
			Extra: map[string]json.RawMessage{
				"plan":  json.RawMessage(`"pro"`),
				"seats": json.RawMessage(`12`),
				"flags": json.RawMessage(`{"beta":true,"tags":["x",null]}`),
			},
		},
	}
}

func TestEntryRoundTripFullyPopulated(t *testing.T) {
	t.Parallel()
	want := populatedEvent()
	require.NoError(t, want.Validate())

	kv, err := want.AppendEntry(nil)
	require.NoError(t, err)
	require.Len(t, kv, 2*len(event.EntryFields), "every entry field is present")

	got, err := event.DecodeEntry(pairsToMap(t, kv))
	require.NoError(t, err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Go -> entry -> Go (-want +got):\n%s", diff)
	}
	for name, ts := range map[string]time.Time{"scheduled_at": got.ScheduledAt, "created_at": got.CreatedAt} {
		require.Equal(t, time.UTC, ts.Location(), name)
	}

	// DecodeValues (the go-redis form) agrees with DecodeEntry.
	values := map[string]any{}
	for k, v := range pairsToMap(t, kv) {
		values[k] = v
	}
	got2, err := event.DecodeValues(values)
	require.NoError(t, err)
	if diff := cmp.Diff(want, got2); diff != "" {
		t.Fatalf("DecodeValues (-want +got):\n%s", diff)
	}
}

// TestEntryGolden pins the exact bytes and order of every field: a change
// here breaks every producer and consumer in other languages.
func TestEntryGolden(t *testing.T) {
	t.Parallel()
	e := populatedEvent()
	e.ScheduledAt = time.Date(2024, 5, 6, 9, 8, 9, 123456789, time.FixedZone("CEST", 2*3600))
	e.Data = json.RawMessage(`{ "email": "ada@example.com" }`) // passed through byte for byte
	want := []string{
		"id", "0190a6f2-1111-7abc-8def-000000000001",
		"event_type", "users.password_reset",
		"schema", "admin",
		"aggregate_id", "0190a6f2-1111-7abc-8def-000000000002",
		"aggregate_type", "user",
		"event_version", "2",
		"correlation_id", "0190a6f2-1111-7abc-8def-000000000003",
		"causation_id", "0190a6f2-1111-7abc-8def-000000000004",
		"priority", "very_high",
		"scheduled_at", "2024-05-06T07:08:09.123456789Z",
		"partition_key", "org-42",
		"tenant_id", "0190a6f2-1111-7abc-8def-000000000005",
		"organization_id", "0190a6f2-1111-7abc-8def-000000000006",
		"user_id", "0190a6f2-1111-7abc-8def-000000000007",
		"source_service", "identity-api",
		"source_version", "1.4.2",
		"max_retries", "5",
		"created_at", "2024-05-06T07:08:10.000001000Z",
		"event_data", `{ "email": "ada@example.com" }`,
		"event_metadata", `{"ip_address":"203.0.113.7","user_agent":"Mozilla/5.0","request_id":"req-77",` +
			`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"vendor=1",` +
			`"flags":{"beta":true,"tags":["x",null]},"plan":"pro","seats":12}`,
	}
	got, err := e.AppendEntry(nil)
	require.NoError(t, err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("entry bytes (-want +got):\n%s", diff)
	}
	var names []string
	for i := 0; i < len(got); i += 2 {
		names = append(names, got[i])
	}
	if diff := cmp.Diff(event.EntryFields, names); diff != "" {
		t.Fatalf("field order differs from EntryFields (-want +got):\n%s", diff)
	}
}

func TestEntryMinimalOmitsEmptyOptionalFields(t *testing.T) {
	t.Parallel()
	e := &event.Event{
		ID:            uuid.MustParse("0190a6f2-1111-7abc-8def-000000000001"),
		EventType:     "users.created",
		Schema:        "tenant_acme",
		AggregateID:   uuid.MustParse("0190a6f2-1111-7abc-8def-000000000002"),
		AggregateType: "user",
		EventVersion:  1,
		MaxRetries:    0, // "no retries" is a value, not an empty field
		Status:        event.StatusPending,
	}
	m, err := e.Entry()
	require.NoError(t, err)
	want := map[string]string{
		"id":             "0190a6f2-1111-7abc-8def-000000000001",
		"event_type":     "users.created",
		"schema":         "tenant_acme",
		"aggregate_id":   "0190a6f2-1111-7abc-8def-000000000002",
		"aggregate_type": "user",
		"event_version":  "1",
		"max_retries":    "0",
		"event_data":     "{}",
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Fatalf("minimal entry (-want +got):\n%s", diff)
	}

	got, err := event.DecodeEntry(m)
	require.NoError(t, err)
	e.Data = json.RawMessage(`{}`)
	e.Priority = event.PriorityNormal // the column default
	if diff := cmp.Diff(e, got); diff != "" {
		t.Fatalf("decoded (-want +got):\n%s", diff)
	}
}

func TestEntryLeavesOutRowOnlyColumns(t *testing.T) {
	t.Parallel()
	e := populatedEvent()
	dur := int32(12)
	e.Status = event.StatusFailed
	e.ProcessingStartedAt = e.CreatedAt
	e.ProcessingCompletedAt = e.CreatedAt
	e.ProcessingDurationMS = &dur
	e.RetryCount = 2
	e.ErrorMessage = "boom"
	e.ErrorDetails = json.RawMessage(`{"code":500}`)
	e.QueueName = "events:admin:users:3"
	e.MessageID = "1714979289000-0"
	e.UpdatedAt = e.CreatedAt
	e.DeletedAt = e.CreatedAt

	m, err := e.Entry()
	require.NoError(t, err)
	keys := slices.Sorted(maps.Keys(m))
	require.Equal(t, slices.Sorted(slices.Values(event.EntryFields)), keys)

	got, err := event.DecodeEntry(m)
	require.NoError(t, err)
	require.Equal(t, event.StatusPending, got.Status, "an entry is a pending event")
	require.Empty(t, got.QueueName, "the caller knows the stream")
	require.Empty(t, got.MessageID, "the caller knows the entry id")
}

func TestAppendEntryAppends(t *testing.T) {
	t.Parallel()
	prefix := []string{"keep", "me"}
	kv, err := populatedEvent().AppendEntry(prefix)
	require.NoError(t, err)
	require.Equal(t, prefix, kv[:2])
	require.Equal(t, "id", kv[2])
}

func TestAppendEntryRefusesInvalidMetadata(t *testing.T) {
	t.Parallel()
	e := populatedEvent()
	e.Metadata.Extra["broken"] = json.RawMessage(`{`)
	_, err := e.AppendEntry(nil)
	require.ErrorContains(t, err, "event_metadata")
	_, err = e.Entry()
	require.Error(t, err)
}

// TestDecodeEntryFromOtherProducers covers what redis-py, redis-cli or the
// platform's Python publisher send: optional fields missing, Python's time
// formats, json.dumps spacing.
func TestDecodeEntryFromOtherProducers(t *testing.T) {
	t.Parallel()
	base := func() map[string]string {
		return map[string]string{
			"id":             "0190a6f2-1111-7abc-8def-000000000001",
			"event_type":     "orders.placed",
			"schema":         "tenant_shop_1",
			"aggregate_id":   "0190a6f2-1111-7abc-8def-000000000002",
			"aggregate_type": "order",
			"event_data":     `{"total": 12.5, "items": [{"sku": "A"}]}`,
		}
	}
	defaults := func() *event.Event {
		return &event.Event{
			ID:            uuid.MustParse("0190a6f2-1111-7abc-8def-000000000001"),
			EventType:     "orders.placed",
			Schema:        "tenant_shop_1",
			AggregateID:   uuid.MustParse("0190a6f2-1111-7abc-8def-000000000002"),
			AggregateType: "order",
			EventVersion:  event.DefaultEventVersion,
			MaxRetries:    event.DefaultMaxRetries,
			Data:          json.RawMessage(`{"total": 12.5, "items": [{"sku": "A"}]}`),
			Status:        event.StatusPending,
			Priority:      event.PriorityNormal,
		}
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	tests := []struct {
		name  string
		set   map[string]string
		apply func(*event.Event)
	}{
		{"required fields only", nil, func(*event.Event) {}},
		{"empty optional fields count as missing", map[string]string{
			"event_version": "", "priority": "", "created_at": "", "correlation_id": "", "event_metadata": "",
			"max_retries": "", "source_service": "",
		}, func(*event.Event) {}},
		{"python isoformat with +00:00", map[string]string{"created_at": "2024-05-06T07:08:09.123456+00:00"},
			func(e *event.Event) { e.CreatedAt = at }},
		{"python str(datetime) with a space", map[string]string{"scheduled_at": "2024-05-06 07:08:09.123456+00:00"},
			func(e *event.Event) { e.ScheduledAt = at }},
		{"naive utcnow().isoformat()", map[string]string{"created_at": "2024-05-06T07:08:09.123456"},
			func(e *event.Event) { e.CreatedAt = at }},
		{"offset converted to UTC", map[string]string{"created_at": "2024-05-06T09:08:09.123456+02:00"},
			func(e *event.Event) { e.CreatedAt = at }},
		{"nanoseconds truncated to µs", map[string]string{"created_at": "2024-05-06T07:08:09.123456999Z"},
			func(e *event.Event) { e.CreatedAt = at }},
		{"no fraction", map[string]string{"created_at": "2024-05-06T07:08:09Z"},
			func(e *event.Event) { e.CreatedAt = at.Truncate(time.Second) }},
		{"metadata with spaces", map[string]string{"event_metadata": `{"ip_address": "10.0.0.1", "extra": [1, 2]}`},
			func(e *event.Event) {
				e.Metadata = event.Metadata{IPAddress: "10.0.0.1", Extra: map[string]json.RawMessage{"extra": json.RawMessage(`[1,2]`)}}
			}},
		{"metadata empty object", map[string]string{"event_metadata": `{}`}, func(*event.Event) {}},
		{"upper-case UUID", map[string]string{"correlation_id": "0190A6F2-1111-7ABC-8DEF-00000000000A"},
			func(e *event.Event) { e.CorrelationID = uuid.MustParse("0190a6f2-1111-7abc-8def-00000000000a") }},
		{"uuid4 ids", map[string]string{"id": "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"},
			func(e *event.Event) { e.ID = uuid.MustParse("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f") }},
		{"ints with sign and spaces", map[string]string{"event_version": " +3 ", "max_retries": "0"},
			func(e *event.Event) { e.EventVersion = 3; e.MaxRetries = 0 }},
		{"priority", map[string]string{"priority": "critical"}, func(e *event.Event) { e.Priority = event.PriorityCritical }},
		{"unknown fields ignored", map[string]string{"status": "completed", "queue_name": "x", "foo": "bar"}, func(*event.Event) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := base()
			maps.Copy(m, tt.set)
			want := defaults()
			tt.apply(want)
			got, err := event.DecodeEntry(m)
			require.NoError(t, err)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeEntryRefusesMalformed(t *testing.T) {
	t.Parallel()
	const goodID = "0190a6f2-1111-7abc-8def-000000000001"
	tests := []struct {
		name  string
		set   map[string]string
		drop  string
		field string
	}{
		{"id missing", nil, "id", "id"},
		{"event_type missing", nil, "event_type", "event_type"},
		{"schema missing", nil, "schema", "schema"},
		{"aggregate_id missing", nil, "aggregate_id", "aggregate_id"},
		{"aggregate_type missing", nil, "aggregate_type", "aggregate_type"},
		{"event_data missing", nil, "event_data", "event_data"},
		{"id empty", map[string]string{"id": ""}, "", "id"},
		{"nil id", map[string]string{"id": "00000000-0000-0000-0000-000000000000"}, "", "id"},
		{"id not a uuid", map[string]string{"id": "not-a-uuid"}, "", "id"},
		{"id in braces", map[string]string{"id": "{" + goodID + "}"}, "", "id"},
		{"id as urn", map[string]string{"id": "urn:uuid:" + goodID}, "", "id"},
		{"id without hyphens", map[string]string{"id": strings.ReplaceAll(goodID, "-", "")}, "", "id"},
		{"id with a space", map[string]string{"id": " " + goodID}, "", "id"},
		{"id with non-hex", map[string]string{"id": "0190a6f2-1111-7abc-8def-00000000000g"}, "", "id"},
		{"id hyphens moved", map[string]string{"id": "0190a6f21-111-7abc-8def-000000000001"}, "", "id"},
		{"aggregate_id bad", map[string]string{"aggregate_id": "42"}, "", "aggregate_id"},
		{"correlation_id bad", map[string]string{"correlation_id": "x"}, "", "correlation_id"},
		{"causation_id braces", map[string]string{"causation_id": "{" + goodID + "}"}, "", "causation_id"},
		{"tenant_id bad", map[string]string{"schema": "admin", "tenant_id": "tenant-1"}, "", "tenant_id"},
		{"organization_id bad", map[string]string{"schema": "admin", "organization_id": "1"}, "", "organization_id"},
		{"user_id bad", map[string]string{"user_id": "u1"}, "", "user_id"},
		{"tenant_id in a tenant schema", map[string]string{"tenant_id": goodID}, "", "tenant_id"},
		{"event_data bad JSON", map[string]string{"event_data": `{"a":`}, "", "event_data"},
		{"event_data array", map[string]string{"event_data": `[1,2]`}, "", "event_data"},
		{"event_data string", map[string]string{"event_data": `"{}"`}, "", "event_data"},
		{"event_data null", map[string]string{"event_data": `null`}, "", "event_data"},
		{"event_data trailing garbage", map[string]string{"event_data": `{} x`}, "", "event_data"},
		{"event_data \\u0000", map[string]string{"event_data": `{"a":"\u0000"}`}, "", "event_data"},
		{"event_metadata array", map[string]string{"event_metadata": `[]`}, "", "event_metadata"},
		{"event_metadata null", map[string]string{"event_metadata": `null`}, "", "event_metadata"},
		{"event_metadata bad JSON", map[string]string{"event_metadata": `{"a"`}, "", "event_metadata"},
		{"event_version word", map[string]string{"event_version": "one"}, "", "event_version"},
		{"event_version float", map[string]string{"event_version": "1.5"}, "", "event_version"},
		{"event_version overflow", map[string]string{"event_version": "99999999999"}, "", "event_version"},
		{"max_retries word", map[string]string{"max_retries": "three"}, "", "max_retries"},
		{"max_retries negative", map[string]string{"max_retries": "-1"}, "", "max_retries"},
		{"created_at words", map[string]string{"created_at": "yesterday"}, "", "created_at"},
		{"created_at unix seconds", map[string]string{"created_at": "1714979289"}, "", "created_at"},
		{"created_at month 13", map[string]string{"created_at": "2024-13-01T00:00:00Z"}, "", "created_at"},
		{"created_at year 10000 in UTC", map[string]string{"created_at": "9999-12-31T23:59:59-01:00"}, "", "created_at"},
		{"created_at year 0", map[string]string{"created_at": "0000-06-01T00:00:00Z"}, "", "created_at"},
		{"scheduled_at date only", map[string]string{"scheduled_at": "2024-05-06"}, "", "scheduled_at"},
		{"priority unknown", map[string]string{"priority": "urgent"}, "", "priority"},
		{"priority upper case", map[string]string{"priority": "HIGH"}, "", "priority"},
		{"event_type three segments", map[string]string{"event_type": "users.created.v2"}, "", "event_type"},
		{"event_type upper case", map[string]string{"event_type": "Users.Created"}, "", "event_type"},
		{"schema injection", map[string]string{"schema": `tenant_a"; DROP SCHEMA admin CASCADE; --`}, "", "schema"},
		{"schema public", map[string]string{"schema": "public"}, "", "schema"},
		{"schema template", map[string]string{"schema": "tenant_template"}, "", "schema"},
		{"schema NUL", map[string]string{"schema": "admin\x00"}, "", "schema"},
		{"aggregate_type too long", map[string]string{"aggregate_type": strings.Repeat("a", 101)}, "", "aggregate_type"},
		{"aggregate_type NUL", map[string]string{"aggregate_type": "a\x00"}, "", "aggregate_type"},
		{"partition_key too long", map[string]string{"partition_key": strings.Repeat("p", 101)}, "", "partition_key"},
		{"source_service invalid UTF-8", map[string]string{"source_service": "svc\xff"}, "", "source_service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := map[string]string{
				"id":             goodID,
				"event_type":     "users.created",
				"schema":         "tenant_acme",
				"aggregate_id":   "0190a6f2-1111-7abc-8def-000000000002",
				"aggregate_type": "user",
				"event_data":     `{}`,
			}
			_, err := event.DecodeEntry(m)
			require.NoError(t, err, "the base entry must be valid")
			delete(m, tt.drop)
			maps.Copy(m, tt.set)

			e, err := event.DecodeEntry(m)
			require.Nil(t, e)
			requireFieldError(t, err, tt.field)
			require.Less(t, len(err.Error()), 400, "error must not echo unbounded input")
		})
	}
}

func TestDecodeValues(t *testing.T) {
	t.Parallel()
	base := func() map[string]any {
		return map[string]any{
			"id":             "0190a6f2-1111-7abc-8def-000000000001",
			"event_type":     []byte("users.created"),
			"schema":         "tenant_acme",
			"aggregate_id":   []byte("0190a6f2-1111-7abc-8def-000000000002"),
			"aggregate_type": "user",
			"event_data":     []byte(`{"a":1}`),
			"event_metadata": []byte(`{"request_id":"r"}`),
		}
	}
	e, err := event.DecodeValues(base())
	require.NoError(t, err)
	require.Equal(t, "users.created", e.EventType)
	require.Equal(t, json.RawMessage(`{"a":1}`), e.Data)
	require.Equal(t, "r", e.Metadata.RequestID)

	tests := []struct {
		name  string
		field string
		value any
	}{
		{"int where string expected", "max_retries", 3},
		{"int64 id", "id", int64(7)},
		{"nil value", "event_data", nil},
		{"nested map", "event_metadata", map[string]any{"a": 1}},
		{"bool", "priority", true},
		{"slice of strings", "schema", []string{"admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := base()
			v[tt.field] = tt.value
			e, err := event.DecodeValues(v)
			require.Nil(t, e)
			requireFieldError(t, err, tt.field)
			require.Contains(t, err.Error(), "not a string")
		})
	}
}

func TestFormatAndParseTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 5, 6, 7, 8, 9, 120000000, time.UTC)
	require.Equal(t, "2024-05-06T07:08:09.120000000Z", event.FormatTime(at))
	require.Equal(t, "2024-05-06T07:08:09.120000000Z", event.FormatTime(at.In(time.FixedZone("X", -5*3600))))
	require.Equal(t, "2024-05-06T07:08:09.000000000Z", event.FormatTime(at.Truncate(time.Second)))

	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2024-05-06T07:08:09.120000000Z", at, true},
		{"2024-05-06T07:08:09.12Z", at, true},
		{"2024-05-06T07:08:09.12+00:00", at, true},
		{"2024-05-06T02:08:09.12-05:00", at, true},
		{"2024-05-06 07:08:09.12+00:00", at, true},
		{"2024-05-06T07:08:09.12", at, true},
		{"2024-05-06 07:08:09.12", at, true},
		{"0001-01-01T00:00:00Z", time.Time{}, true},
		{"9999-12-31T23:59:59.999999Z", time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), true},
		{"", time.Time{}, false},
		{"2024-05-06", time.Time{}, false},
		{"2024-05-06T25:00:00Z", time.Time{}, false},
		{"2024-05-06T07:08:09+25:00", time.Time{}, false},
		{"9999-12-31T23:59:59-00:01", time.Time{}, false},
		{"0001-01-01T00:00:00+00:01", time.Time{}, false},
		{"Mon, 06 May 2024 07:08:09 GMT", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := event.ParseTime(tt.in)
		if !tt.ok {
			require.Error(t, err, "ParseTime(%q)", tt.in)
			continue
		}
		require.NoError(t, err, "ParseTime(%q)", tt.in)
		require.True(t, tt.want.Equal(got), "ParseTime(%q) = %v, want %v", tt.in, got, tt.want)
		if !got.IsZero() {
			require.Equal(t, time.UTC, got.Location())
			back, err := event.ParseTime(event.FormatTime(got))
			require.NoError(t, err)
			require.True(t, got.Equal(back), "FormatTime/ParseTime round trip of %v", got)
		}
	}
}

func pairsToMap(t testing.TB, kv []string) map[string]string {
	t.Helper()
	require.Zero(t, len(kv)%2, "odd number of entry items")
	m := make(map[string]string, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		_, dup := m[kv[i]]
		require.False(t, dup, "field %q twice", kv[i])
		m[kv[i]] = kv[i+1]
	}
	return m
}

func BenchmarkAppendEntry(b *testing.B) {
	e := populatedEvent()
	buf := make([]string, 0, 2*len(event.EntryFields))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = e.AppendEntry(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeValues(b *testing.B) {
	m, err := populatedEvent().Entry()
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

// TestFieldIndexFollowsEntryFields: the decoder's field switch and
// EntryFields agree, and nothing else is an event field.
func TestFieldIndexFollowsEntryFields(t *testing.T) {
	if len(event.EntryFields) != event.NumEntryFields {
		t.Fatalf("EntryFields has %d fields, numEntryFields is %d", len(event.EntryFields), event.NumEntryFields)
	}
	for i, f := range event.EntryFields {
		if got := event.FieldIndex(f); got != i {
			t.Errorf("fieldIndex(%q) = %d, want %d", f, got, i)
		}
	}
	for _, k := range []string{"", "ID", "id ", "event", "redrive_count", "queue_name", "status"} {
		if got := event.FieldIndex(k); got != -1 {
			t.Errorf("fieldIndex(%q) = %d, want -1", k, got)
		}
	}
}
