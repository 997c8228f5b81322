package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
)

func TestNewIDIsVersion7WithRFCVariant(t *testing.T) {
	t.Parallel()
	before := time.Now().UnixMilli()
	id, err := event.NewID()
	require.NoError(t, err)
	after := time.Now().UnixMilli()

	require.Equal(t, uuid.Version(7), id.Version())
	require.Equal(t, uuid.RFC4122, id.Variant())
	require.Equal(t, byte(0x70), id[6]&0xf0, "version nibble")
	require.Equal(t, byte(0x80), id[8]&0xc0, "variant bits 10")

	sec, nsec := id.Time().UnixTime()
	ms := sec*1000 + nsec/1e6
	require.GreaterOrEqual(t, ms, before, "embedded unix_ts_ms")
	// Ids stay increasing past 4,096 in one millisecond by moving their
	// millisecond ahead of the clock (as uuid.NewV7 does), and the parallel
	// tests below draw hundreds of thousands of ids at once: allow that
	// lead, which is far below any unit or epoch mistake.
	const lead = 1000
	require.LessOrEqual(t, ms, after+lead, "embedded unix_ts_ms")
}

func TestNewIDStrictlyIncreasingInOneGoroutine(t *testing.T) {
	t.Parallel()
	const n = 100_000
	prev, err := event.NewID()
	require.NoError(t, err)
	for i := 0; i < n; i++ {
		id, err := event.NewID()
		require.NoError(t, err)
		if bytes.Compare(prev[:], id[:]) >= 0 {
			t.Fatalf("call %d: %s is not after %s", i, id, prev)
		}
		// The canonical text sorts like the bytes, so ORDER BY id::text agrees.
		if prev.String() >= id.String() {
			t.Fatalf("call %d: text %s is not after %s", i, id, prev)
		}
		prev = id
	}
}

func TestNewIDUniqueAndOrderedPerGoroutineAcrossGoroutines(t *testing.T) {
	t.Parallel()
	const workers, per = 8, 10_000
	got := make([][]uuid.UUID, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]uuid.UUID, 0, per)
			for i := 0; i < per; i++ {
				id, err := event.NewID()
				if err != nil {
					return
				}
				ids = append(ids, id)
			}
			got[w] = ids
		}()
	}
	wg.Wait()

	seen := make(map[uuid.UUID]bool, workers*per)
	for w, ids := range got {
		require.Len(t, ids, per, "goroutine %d", w)
		for i, id := range ids {
			require.False(t, seen[id], "duplicate id %s", id)
			seen[id] = true
			if i > 0 {
				require.Negative(t, bytes.Compare(ids[i-1][:], id[:]), "goroutine %d not monotonic at %d", w, i)
			}
		}
	}
	require.Len(t, seen, workers*per)
}

func TestNewAppliesColumnDefaults(t *testing.T) {
	t.Parallel()
	agg := uuid.MustParse("0190a6f2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")
	before := time.Now().UTC()
	e, err := event.New("tenant_acme", "users.created", "user", agg, nil)
	require.NoError(t, err)

	require.Equal(t, uuid.Version(7), e.ID.Version())
	require.Equal(t, "users.created", e.EventType)
	require.Equal(t, "tenant_acme", e.Schema)
	require.Equal(t, agg, e.AggregateID)
	require.Equal(t, "user", e.AggregateType)
	require.Equal(t, event.DefaultEventVersion, e.EventVersion)
	require.Equal(t, json.RawMessage(`{}`), e.Data)
	require.Equal(t, event.StatusPending, e.Status)
	require.Equal(t, event.PriorityNormal, e.Priority)
	require.Equal(t, event.DefaultMaxRetries, e.MaxRetries)
	for name, ts := range map[string]time.Time{"scheduled_at": e.ScheduledAt, "created_at": e.CreatedAt, "updated_at": e.UpdatedAt} {
		require.Equal(t, time.UTC, ts.Location(), name)
		require.Zero(t, ts.Nanosecond()%1000, "%s has sub-microsecond digits", name)
		require.WithinDuration(t, before, ts, time.Minute, name)
	}
}

func TestNewRefusesInvalidInput(t *testing.T) {
	t.Parallel()
	agg := uuid.MustParse("0190a6f2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")
	tests := []struct {
		name      string
		schema    string
		eventType string
		aggType   string
		aggID     uuid.UUID
		data      string
		field     string
	}{
		{"bad type", "admin", "Users.Created", "user", agg, `{}`, "event_type"},
		{"bad schema", "public", "users.created", "user", agg, `{}`, "schema"},
		{"no aggregate id", "admin", "users.created", "user", uuid.Nil, `{}`, "aggregate_id"},
		{"no aggregate type", "admin", "users.created", "", agg, `{}`, "aggregate_type"},
		{"array data", "admin", "users.created", "user", agg, `[]`, "event_data"},
		{"broken data", "admin", "users.created", "user", agg, `{"a":`, "event_data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := event.New(tt.schema, tt.eventType, tt.aggType, tt.aggID, json.RawMessage(tt.data))
			require.Nil(t, e)
			requireFieldError(t, err, tt.field)
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"zero stays zero", time.Time{}, time.Time{}},
		{"to UTC", time.Date(2024, 5, 6, 9, 0, 0, 0, paris), time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)},
		{"truncated to µs", time.Date(2024, 5, 6, 7, 0, 0, 123456789, time.UTC), time.Date(2024, 5, 6, 7, 0, 0, 123456000, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := event.Normalize(tt.in)
			require.True(t, tt.want.Equal(got), "want %v, got %v", tt.want, got)
			if !got.IsZero() {
				require.Equal(t, time.UTC, got.Location())
			}
		})
	}
	now := event.Now()
	require.Equal(t, time.UTC, now.Location())
	require.Zero(t, now.Nanosecond()%1000)
}

func TestValidateTypeGrammar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		valid bool
	}{
		{"users.created", true},
		{"user_accounts.password_reset", true},
		{"_._", true},
		{"a.b", true},
		{"", false},
		{"users", false},
		{"users.", false},
		{".created", false},
		{"Users.created", false},
		{"users.Created", false},
		{"users.created.v2", false},
		{"users.created2", false},
		{"users-x.created", false},
		{"users created", false},
		{"users.created\n", false},
		{" users.created", false},
		{"usérs.created", false},
		{"users.créé", false},
		{"users.cre\x00ated", false},
		{"users..created", false},
		{"users.*", false},
		{strings.Repeat("a", 127) + "." + strings.Repeat("b", 127), true}, // 255 bytes
		{strings.Repeat("a", 128) + "." + strings.Repeat("b", 127), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			err := event.ValidateType(tt.in)
			if tt.valid {
				require.NoError(t, err)
				return
			}
			requireFieldError(t, err, "event_type")
		})
	}
}

func TestCategory(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"users.created", "users"},
		{"billing_invoices.paid", "billing_invoices"},
		{"nodot", "nodot"},
		{"", ""},
		{".x", ""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, event.Category(tt.in), "Category(%q)", tt.in)
	}
}

func TestEffectivePartitionKey(t *testing.T) {
	t.Parallel()
	e := validEvent(t)
	require.Equal(t, e.AggregateID.String(), e.EffectivePartitionKey())
	e.PartitionKey = "org-42"
	require.Equal(t, "org-42", e.EffectivePartitionKey())
}

func TestValidate(t *testing.T) {
	t.Parallel()
	neg := int32(-1)
	zero := int32(0)
	tests := []struct {
		name   string
		mutate func(*event.Event)
		field  string // "" means valid
	}{
		{"valid tenant event", func(*event.Event) {}, ""},
		{"valid admin with tenant ids", func(e *event.Event) {
			e.Schema = "admin"
			e.TenantID = uuid.New()
			e.OrganizationID = uuid.New()
		}, ""},
		{"no id", func(e *event.Event) { e.ID = uuid.Nil }, "id"},
		{"no aggregate id", func(e *event.Event) { e.AggregateID = uuid.Nil }, "aggregate_id"},
		{"no aggregate type", func(e *event.Event) { e.AggregateType = "" }, "aggregate_type"},
		{"aggregate type 100 chars", func(e *event.Event) { e.AggregateType = strings.Repeat("x", 100) }, ""},
		{"aggregate type 100 multibyte chars", func(e *event.Event) { e.AggregateType = strings.Repeat("é", 100) }, ""},
		{"aggregate type 101 chars", func(e *event.Event) { e.AggregateType = strings.Repeat("x", 101) }, "aggregate_type"},
		{"aggregate type with NUL", func(e *event.Event) { e.AggregateType = "us\x00er" }, "aggregate_type"},
		{"aggregate type 101 multibyte chars", func(e *event.Event) { e.AggregateType = strings.Repeat("é", 101) }, "aggregate_type"},
		{"aggregate type 100 4-byte chars", func(e *event.Event) { e.AggregateType = strings.Repeat("😀", 100) }, ""},
		{"aggregate type 60 chars, 101 bytes", func(e *event.Event) { e.AggregateType = strings.Repeat("é", 41) + strings.Repeat("x", 19) }, ""},
		{"aggregate type control and DEL", func(e *event.Event) { e.AggregateType = "a\x01\x1f\x7f" }, ""},
		{"aggregate type overlong NUL", func(e *event.Event) { e.AggregateType = "a\xc0\x80" }, "aggregate_type"},
		{"aggregate type surrogate in UTF-8", func(e *event.Event) { e.AggregateType = "a\xed\xa0\x80" }, "aggregate_type"},
		{"aggregate type NUL after non-ASCII", func(e *event.Event) { e.AggregateType = "é\x00" }, "aggregate_type"},
		{"partition key NUL at the end", func(e *event.Event) { e.PartitionKey = "pk\x00" }, "partition_key"},
		{"aggregate type invalid UTF-8", func(e *event.Event) { e.AggregateType = "us\xffer" }, "aggregate_type"},
		{"bad type", func(e *event.Event) { e.EventType = "users.created.now" }, "event_type"},
		{"empty schema", func(e *event.Event) { e.Schema = "" }, "schema"},
		{"template schema", func(e *event.Event) { e.Schema = "tenant_template" }, "schema"},
		{"nil data", func(e *event.Event) { e.Data = nil }, "event_data"},
		{"array data", func(e *event.Event) { e.Data = json.RawMessage(`[1]`) }, "event_data"},
		{"null data", func(e *event.Event) { e.Data = json.RawMessage(`null`) }, "event_data"},
		{"two objects", func(e *event.Event) { e.Data = json.RawMessage(`{}{}`) }, "event_data"},
		{"data with leading space", func(e *event.Event) { e.Data = json.RawMessage(" \n{}") }, ""},
		{"data with \\u0000", func(e *event.Event) { e.Data = json.RawMessage(`{"a":"x\u0000"}`) }, "event_data"},
		{"data with escaped backslash then u0000", func(e *event.Event) { e.Data = json.RawMessage(`{"a":"x\\u0000"}`) }, ""},
		{"data with invalid UTF-8", func(e *event.Event) { e.Data = json.RawMessage("{\"a\":\"\xff\"}") }, "event_data"},
		{"data with \\u0000 in a key", func(e *event.Event) { e.Data = json.RawMessage(`{"\u0000":1}`) }, "event_data"},
		{"data with a surrogate in UTF-8", func(e *event.Event) { e.Data = json.RawMessage("{\"a\":\"1234567\xed\xa0\x80\"}") }, "event_data"},
		{"data with an overlong rune", func(e *event.Event) { e.Data = json.RawMessage("{\"a\":\"\xe0\x80\xaf\"}") }, "event_data"},
		{"data with runes across words", func(e *event.Event) { e.Data = json.RawMessage(`{"a":"1234567é€😀"}`) }, ""},
		{"error details with \\u0000", func(e *event.Event) { e.ErrorDetails = json.RawMessage(`{"a":["\u0000"]}`) }, "error_details"},
		{"metadata extra with \\u0000", func(e *event.Event) { e.Metadata.Extra = map[string]json.RawMessage{"k": json.RawMessage(`"\u0000"`)} }, "event_metadata"},
		{"metadata extra with escaped backslash u0000", func(e *event.Event) { e.Metadata.Extra = map[string]json.RawMessage{"k": json.RawMessage(`"\\u0000"`)} }, ""},
		{"metadata extra invalid UTF-8", func(e *event.Event) { e.Metadata.Extra = map[string]json.RawMessage{"k": json.RawMessage("\"\xff\"")} }, "event_metadata"},
		{"error details array", func(e *event.Event) { e.ErrorDetails = json.RawMessage(`[]`) }, "error_details"},
		{"error details object", func(e *event.Event) { e.ErrorDetails = json.RawMessage(`{"code":1}`) }, ""},
		{"metadata bad extra", func(e *event.Event) { e.Metadata.Extra = map[string]json.RawMessage{"k": json.RawMessage(`{`)} }, "event_metadata"},
		{"metadata NUL", func(e *event.Event) { e.Metadata.UserAgent = "a\x00" }, "event_metadata"},
		{"empty status", func(e *event.Event) { e.Status = "" }, "status"},
		{"unknown status", func(e *event.Event) { e.Status = "done" }, "status"},
		{"unknown priority", func(e *event.Event) { e.Priority = "urgent" }, "priority"},
		{"empty priority", func(e *event.Event) { e.Priority = "" }, "priority"},
		{"negative max retries", func(e *event.Event) { e.MaxRetries = -1 }, "max_retries"},
		{"zero max retries", func(e *event.Event) { e.MaxRetries = 0 }, ""},
		{"retry count above max", func(e *event.Event) { e.RetryCount = 4 }, "retry_count"},
		{"retry count at max", func(e *event.Event) { e.RetryCount = 3 }, ""},
		{"negative retry count", func(e *event.Event) { e.RetryCount = -1 }, "retry_count"},
		{"negative duration", func(e *event.Event) { e.ProcessingDurationMS = &neg }, "processing_duration_ms"},
		{"zero duration", func(e *event.Event) { e.ProcessingDurationMS = &zero }, ""},
		{"tenant id outside admin", func(e *event.Event) { e.TenantID = uuid.New() }, "tenant_id"},
		{"organization id outside admin", func(e *event.Event) { e.OrganizationID = uuid.New() }, "organization_id"},
		{"source service 101", func(e *event.Event) { e.SourceService = strings.Repeat("s", 101) }, "source_service"},
		{"source version 51", func(e *event.Event) { e.SourceVersion = strings.Repeat("v", 51) }, "source_version"},
		{"source version 50", func(e *event.Event) { e.SourceVersion = strings.Repeat("v", 50) }, ""},
		{"queue name 101", func(e *event.Event) { e.QueueName = strings.Repeat("q", 101) }, "queue_name"},
		{"message id 101", func(e *event.Event) { e.MessageID = strings.Repeat("m", 101) }, "message_id"},
		{"partition key 101", func(e *event.Event) { e.PartitionKey = strings.Repeat("p", 101) }, "partition_key"},
		{"error message NUL", func(e *event.Event) { e.ErrorMessage = "boom\x00" }, "error_message"},
		{"long error message", func(e *event.Event) { e.ErrorMessage = strings.Repeat("e", 10000) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := validEvent(t)
			tt.mutate(e)
			err := e.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			requireFieldError(t, err, tt.field)
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	t.Parallel()
	err := error(&event.FieldError{Field: "schema", Reason: "bad"})
	require.Equal(t, "invalid event: schema: bad", err.Error())
	require.ErrorIs(t, err, event.ErrInvalid)
	require.NotErrorIs(t, err, event.ErrInvalidSchema)
}

func TestString(t *testing.T) {
	t.Parallel()
	e := validEvent(t)
	require.Equal(t, "users.created "+e.ID.String()+" in tenant_acme", e.String())
}

// validEvent is a valid tenant event with fixed ids and times.
func validEvent(t testing.TB) *event.Event {
	t.Helper()
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	return &event.Event{
		ID:            uuid.MustParse("0190a6f2-0000-7000-8000-000000000001"),
		EventType:     "users.created",
		Schema:        "tenant_acme",
		AggregateID:   uuid.MustParse("0190a6f2-0000-7000-8000-000000000002"),
		AggregateType: "user",
		EventVersion:  1,
		Data:          json.RawMessage(`{"email":"a@example.com"}`),
		Status:        event.StatusPending,
		Priority:      event.PriorityNormal,
		ScheduledAt:   ts,
		MaxRetries:    3,
		CreatedAt:     ts,
	}
}

// requireFieldError checks err is an ErrInvalid *FieldError naming field.
func requireFieldError(t testing.TB, err error, field string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, event.ErrInvalid)
	var fe *event.FieldError
	require.True(t, errors.As(err, &fe), "want *event.FieldError, got %T: %v", err, err)
	require.Equal(t, field, fe.Field, "error: %v", err)
	require.NotEmpty(t, fe.Reason)
}

// TestTypeGrammarMatchesTheTablesCheck compares the hand-written grammar
// with the regular expression of the events table's check constraint.
func TestTypeGrammarMatchesTheTablesCheck(t *testing.T) {
	re := regexp.MustCompile(`^[a-z_]+\.[a-z_]+$`)
	alphabet := []byte("az_.A9-é ")
	var gen func(prefix []byte, n int)
	count := 0
	gen = func(prefix []byte, n int) {
		s := string(prefix)
		want := re.MatchString(s)
		got := event.ValidateType(s) == nil
		require.Equal(t, want, got, "%q", s)
		count++
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c), n-1)
		}
	}
	gen(nil, 4)
	require.Greater(t, count, 5000)
}

func TestAppendIDIsString(t *testing.T) {
	for _, id := range []uuid.UUID{uuid.Nil, uuid.Max, uuid.New(), uuid.MustParse("01a21cb0-0000-7000-8000-00000000abcd")} {
		require.Equal(t, id.String(), string(event.AppendID(nil, id)))
		require.Equal(t, "x"+id.String(), string(event.AppendID([]byte("x"), id)))
	}
}

// TestStorableText: the ASCII fast path and the full check agree with
// utf8.ValidString && no NUL.
func TestStorableText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     bool
	}{
		{"empty", "", true},
		{"ASCII", "user", true},
		{"control and DEL", "\x01\t\x1f\x7f", true},
		{"NUL", "a\x00b", false},
		{"NUL first", "\x00", false},
		{"multi-byte", "é€😀", true},
		{"NUL after multi-byte", "é\x00", false},
		{"lone continuation byte", "a\x80", false},
		{"0xff", "\xff", false},
		{"overlong NUL", "\xc0\x80", false},
		{"overlong 3-byte", "\xe0\x80\xaf", false},
		{"surrogate in UTF-8", "\xed\xa0\x80", false},
		{"above U+10FFFF", "\xf4\x90\x80\x80", false},
		{"truncated rune", "ab\xe2\x82", false},
		{"U+FFFD", "\uFFFD", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, refStorableText(tt.in), "reference")
			require.Equal(t, tt.want, event.StorableText(tt.in), "StorableText")
			require.Equal(t, tt.want && utf8.RuneCountInString(tt.in) == len(tt.in), event.PlainASCII(tt.in), "plainASCII")
		})
	}
}

func refStorableText(s string) bool { return utf8.ValidString(s) && !strings.Contains(s, "\x00") }
