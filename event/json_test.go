package event_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
)

// jsonKeys is every key of the JSON form, in the `events` column order.
var jsonKeys = []string{
	"id", "event_type", "schema", "aggregate_id", "aggregate_type", "event_version",
	"correlation_id", "causation_id", "event_data", "event_metadata", "status", "priority",
	"scheduled_at", "processing_started_at", "processing_completed_at", "processing_duration_ms",
	"retry_count", "max_retries", "error_message", "error_details", "tenant_id",
	"organization_id", "user_id", "source_service", "source_version", "queue_name",
	"message_id", "partition_key", "created_at", "updated_at", "deleted_at",
}

// fullEvent sets every field to a distinct non-zero value.
func fullEvent(t *testing.T) *event.Event {
	t.Helper()
	at := func(sec int) time.Time {
		return event.Normalize(time.Date(2024, 5, 6, 7, 8, sec, 123456789, time.FixedZone("X", 3600)))
	}
	dur := int32(1234)
	meta := event.Metadata{IPAddress: "10.0.0.1", UserAgent: "ua/1", RequestID: "req-1",
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "k=v"}
	require.NoError(t, meta.Set("extra", map[string]int{"n": 1}))
	return &event.Event{
		ID:                    uuid.MustParse("01890a5d-ac96-774b-bcce-b302099a8057"),
		EventType:             "users.created",
		Schema:                "admin",
		AggregateID:           uuid.MustParse("11111111-1111-4111-8111-111111111111"),
		AggregateType:         "user",
		EventVersion:          7,
		CorrelationID:         uuid.MustParse("22222222-2222-4222-8222-222222222222"),
		CausationID:           uuid.MustParse("33333333-3333-4333-8333-333333333333"),
		Data:                  json.RawMessage(`{"email":"a@example.com","n":[1,2]}`),
		Metadata:              meta,
		Status:                event.StatusRetrying,
		Priority:              event.PriorityCritical,
		ScheduledAt:           at(1),
		ProcessingStartedAt:   at(2),
		ProcessingCompletedAt: at(3),
		ProcessingDurationMS:  &dur,
		RetryCount:            2,
		MaxRetries:            5,
		ErrorMessage:          "boom",
		ErrorDetails:          json.RawMessage(`{"code":"E1"}`),
		TenantID:              uuid.MustParse("44444444-4444-4444-8444-444444444444"),
		OrganizationID:        uuid.MustParse("55555555-5555-4555-8555-555555555555"),
		UserID:                uuid.MustParse("66666666-6666-4666-8666-666666666666"),
		SourceService:         "svc",
		SourceVersion:         "1.2.3",
		QueueName:             "events:admin:users:3",
		MessageID:             "1700000000000-0",
		PartitionKey:          "pk",
		CreatedAt:             at(4),
		UpdatedAt:             at(5),
		DeletedAt:             at(6),
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	t.Parallel()
	want := fullEvent(t)
	require.NoError(t, want.Validate())
	// A field added to Event must be added to the JSON form (and here).
	v := reflect.ValueOf(*want)
	for i := range v.NumField() {
		require.False(t, v.Field(i).IsZero(), "fullEvent leaves %s unset", v.Type().Field(i).Name)
	}

	b, err := json.Marshal(want)
	require.NoError(t, err)

	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &keys))
	require.ElementsMatch(t, jsonKeys, sortedKeys(keys))
	for k, v := range keys {
		require.NotEqual(t, "null", string(v), "key %s must be set in a full event", k)
	}
	require.Equal(t, `"2024-05-06T06:08:04.123456000Z"`, string(keys["created_at"]))

	var got event.Event
	require.NoError(t, json.Unmarshal(b, &got))
	if diff := cmp.Diff(want, &got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
}

func TestEventJSONNullsAndDefaults(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(&event.Event{})
	require.NoError(t, err)

	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &keys))
	require.ElementsMatch(t, jsonKeys, sortedKeys(keys), "every key is written, even when NULL")
	for k, v := range keys {
		switch k {
		case "event_version", "retry_count", "max_retries":
			require.Equal(t, "0", string(v), k)
		default:
			require.Equal(t, "null", string(v), k)
		}
	}

	var zero event.Event
	require.NoError(t, json.Unmarshal(b, &zero))
	require.Equal(t, event.Event{}, zero, "explicit zeros survive")

	var defaulted event.Event
	require.NoError(t, json.Unmarshal([]byte(`{"event_version":null}`), &defaulted))
	require.Equal(t, event.DefaultEventVersion, defaulted.EventVersion)
	require.Equal(t, event.DefaultMaxRetries, defaulted.MaxRetries)
	require.Equal(t, 0, defaulted.RetryCount)
}

func TestEventJSONByValue(t *testing.T) {
	t.Parallel()
	ev := fullEvent(t)
	b, err := json.Marshal(struct{ E event.Event }{*ev})
	require.NoError(t, err)
	var back struct{ E event.Event }
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, ev.ID, back.E.ID)
	require.Contains(t, string(b), `"event_type":"users.created"`)
}

func TestEventJSONNullLeavesEventUnchanged(t *testing.T) {
	t.Parallel()
	ev := fullEvent(t)
	before := *ev
	require.NoError(t, ev.UnmarshalJSON([]byte(" null ")))
	require.Equal(t, before, *ev)
}

func TestEventJSONRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, field string
	}{
		{"array", `[1]`, ""},
		{"string", `"x"`, ""},
		{"broken", `{"id":`, ""},
		{"id not string", `{"id":5}`, "id"},
		{"id not uuid", `{"id":"nope"}`, "id"},
		{"id braces", `{"id":"{01890a5d-ac96-774b-bcce-b302099a8057}"}`, "id"},
		{"aggregate id", `{"aggregate_id":"01890a5dac96774bbcceb302099a8057"}`, "aggregate_id"},
		{"bad time", `{"created_at":"yesterday"}`, "created_at"},
		{"time number", `{"updated_at":17}`, "updated_at"},
		{"data array", `{"event_data":[1]}`, "event_data"},
		{"data string", `{"event_data":"{}"}`, "event_data"},
		{"details number", `{"error_details":3}`, "error_details"},
		{"metadata array", `{"event_metadata":[]}`, ""},
		{"retry overflow", `{"retry_count":99999999999}`, "retry_count"},
		{"version fraction", `{"event_version":1.5}`, "event_version"},
		{"duration string", `{"processing_duration_ms":"5"}`, "processing_duration_ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := event.Event{EventType: "keep.me"}
			// Called directly: json.Unmarshal would report a syntax error
			// itself before reaching the method.
			err := ev.UnmarshalJSON([]byte(tc.in))
			require.Error(t, err)
			require.ErrorIs(t, err, event.ErrInvalid)
			require.Equal(t, "keep.me", ev.EventType, "a failed decode leaves the event alone")
			if tc.field != "" {
				var fe *event.FieldError
				require.True(t, errors.As(err, &fe), "want *FieldError, got %T: %v", err, err)
				require.Equal(t, tc.field, fe.Field)
			}
		})
	}
}

func TestEventJSONRefusesInvalidRawOnMarshal(t *testing.T) {
	t.Parallel()
	ev := fullEvent(t)
	ev.Data = json.RawMessage(`{"a":`)
	_, err := json.Marshal(ev)
	require.Error(t, err)
}

func sortedKeys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
