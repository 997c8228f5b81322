package event

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Column limits from the platform's `events` table (DESIGN §1).
const (
	MaxEventTypeLen     = 255
	MaxAggregateTypeLen = 100
	MaxSourceServiceLen = 100
	MaxSourceVersionLen = 50
	MaxQueueNameLen     = 100
	MaxMessageIDLen     = 100
	MaxPartitionKeyLen  = 100
)

// Defaults the platform's columns apply when a producer leaves a field out.
const (
	DefaultEventVersion = 1
	DefaultMaxRetries   = 3
)

// Sentinel errors; callers branch on them with errors.Is.
var (
	// ErrInvalid marks an event (or stream entry) that breaks the contract.
	ErrInvalid = errors.New("invalid event")
	// ErrInvalidSchema marks a schema name that may not reach SQL.
	ErrInvalidSchema = errors.New("invalid schema name")
)

// Event is one row of `<schema>.events`, plus the schema it lives in.
// Zero values mean NULL for optional columns (see the package doc).
type Event struct {
	ID            uuid.UUID
	EventType     string
	Schema        string // "admin" or "tenant_<slug>"; not a column, it names the table
	AggregateID   uuid.UUID
	AggregateType string
	EventVersion  int
	CorrelationID uuid.UUID
	CausationID   uuid.UUID
	Data          json.RawMessage // event_data, a JSON object
	Metadata      Metadata        // event_metadata
	Status        Status
	Priority      Priority
	ScheduledAt   time.Time

	ProcessingStartedAt   time.Time
	ProcessingCompletedAt time.Time
	ProcessingDurationMS  *int32
	RetryCount            int
	MaxRetries            int
	ErrorMessage          string
	ErrorDetails          json.RawMessage // a JSON object; nil means the column default '{}'

	TenantID       uuid.UUID // admin schema only
	OrganizationID uuid.UUID // admin schema only
	UserID         uuid.UUID
	SourceService  string
	SourceVersion  string
	QueueName      string
	MessageID      string
	PartitionKey   string

	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt time.Time
}

// New returns an event of the given type for the given aggregate with a fresh
// UUIDv7 id and the column defaults applied. data must be a JSON object; nil
// means {}.
func New(schema, eventType, aggregateType string, aggregateID uuid.UUID, data json.RawMessage) (*Event, error) {
	// One clock reading for the id and the timestamps: time.Now showed in
	// profiles of event-heavy producers.
	t := time.Now()
	id, err := ids.next(t)
	if err != nil {
		return nil, err
	}
	now := Normalize(t)
	e := &Event{
		ID:            id,
		EventType:     eventType,
		Schema:        schema,
		AggregateID:   aggregateID,
		AggregateType: aggregateType,
		EventVersion:  DefaultEventVersion,
		Data:          data,
		Status:        StatusPending,
		Priority:      PriorityNormal,
		ScheduledAt:   now,
		MaxRetries:    DefaultMaxRetries,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage(`{}`)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// Now is the current time in UTC, truncated to the microsecond precision that
// PostgreSQL stores.
func Now() time.Time { return Normalize(time.Now()) }

// Normalize converts t to UTC at microsecond precision; the zero time stays zero.
func Normalize(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// NewID returns a UUIDv7: time-ordered, and strictly increasing within this
// process. Like github.com/google/uuid's NewV7, it fills the 12 bits after
// the millisecond timestamp with the sub-millisecond time (in 256 ns steps)
// and takes the next value when the clock has not moved on; the last 62
// bits are random.
func NewID() (uuid.UUID, error) {
	return ids.next(time.Now())
}

// ids generates the event ids of this process.
var ids idGenerator

// idGenerator keeps NewID's sequence and its random bits under one lock.
// The random bits come from crypto/rand 4 KiB at a time: one call per 512
// ids rather than one per id, which cost more than the rest of an id (the
// bytes are crypto/rand's; only the per-call overhead is shared).
type idGenerator struct {
	mu   sync.Mutex
	last int64 // unix_ts_ms<<12 | sequence of the last id
	rnd  [4096]byte
	left int // unused bytes at the end of rnd
}

// next returns the id for an event made at t (time.Now, or close to it).
func (g *idGenerator) next(t time.Time) (uuid.UUID, error) {
	nano := t.UnixNano()
	milli := nano / int64(time.Millisecond)
	seq := (nano - milli*int64(time.Millisecond)) >> 8 // 0..3906
	g.mu.Lock()
	defer g.mu.Unlock()
	now := max(milli<<12+seq, g.last+1)
	if g.left < 8 {
		if _, err := rand.Read(g.rnd[:]); err != nil {
			return uuid.Nil, fmt.Errorf("generate event id: %w", err)
		}
		g.left = len(g.rnd)
	}
	g.last = now
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], uint64(now>>12)<<16|0x7000|uint64(now&0xfff))
	copy(id[8:], g.rnd[len(g.rnd)-g.left:])
	g.left -= 8
	id[8] = id[8]&0x3f | 0x80 // variant 10
	return id, nil
}

// AppendID appends the canonical text form of id (as id.String() gives
// it) without allocating, for encoders on hot paths.
func AppendID(dst []byte, id uuid.UUID) []byte {
	const hexDigits = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return dst
}

// EffectivePartitionKey is the key that picks the event's stream partition:
// PartitionKey, or the aggregate id when it is empty (DESIGN §2).
func (e *Event) EffectivePartitionKey() string {
	if e.PartitionKey != "" {
		return e.PartitionKey
	}
	return e.AggregateID.String()
}

// FieldError names the field that made an event invalid. It unwraps to ErrInvalid.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("invalid event: %s: %s", e.Field, e.Reason) }

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks every constraint the `events` table enforces, plus the
// schema grammar and what PostgreSQL can store at all (UTF-8 text without
// NUL, jsonb without \u0000), so a bad event is refused before it reaches
// Postgres or a stream. The error is a *FieldError naming the first bad field.
func (e *Event) Validate() error {
	switch {
	case e.ID == uuid.Nil:
		return fieldErr("id", "required")
	case e.AggregateID == uuid.Nil:
		return fieldErr("aggregate_id", "required")
	case e.AggregateType == "":
		return fieldErr("aggregate_type", "required")
	}
	if err := ValidateType(e.EventType); err != nil {
		return err
	}
	if err := ValidateSchema(e.Schema); err != nil {
		return &FieldError{Field: "schema", Reason: err.Error()}
	}
	for _, check := range []func() error{e.validateJSON, e.validateState, e.validateScope, e.validateText} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (e *Event) validateJSON() error {
	if !storableJSONObject(e.Data) {
		return fieldErr("event_data", "must be a JSON object PostgreSQL can store (UTF-8, no \\u0000)")
	}
	if e.ErrorDetails != nil && !storableJSONObject(e.ErrorDetails) {
		return fieldErr("error_details", "must be a JSON object PostgreSQL can store (UTF-8, no \\u0000)")
	}
	if err := e.Metadata.validate(); err != nil {
		return fieldErr("event_metadata", "%v", err)
	}
	return nil
}

func (e *Event) validateState() error {
	if !e.Status.Valid() {
		return fieldErr("status", "unknown status %q", string(e.Status))
	}
	if !e.Priority.Valid() {
		return fieldErr("priority", "unknown priority %q", string(e.Priority))
	}
	if e.MaxRetries < 0 {
		return fieldErr("max_retries", "must be >= 0, got %d", e.MaxRetries)
	}
	if e.RetryCount < 0 || e.RetryCount > e.MaxRetries {
		return fieldErr("retry_count", "must be between 0 and max_retries (%d), got %d", e.MaxRetries, e.RetryCount)
	}
	if e.ProcessingDurationMS != nil && *e.ProcessingDurationMS < 0 {
		return fieldErr("processing_duration_ms", "must be >= 0")
	}
	return nil
}

func (e *Event) validateScope() error {
	if e.Schema == AdminSchema {
		return nil
	}
	if e.TenantID != uuid.Nil {
		return fieldErr("tenant_id", "exists only in the admin schema")
	}
	if e.OrganizationID != uuid.Nil {
		return fieldErr("organization_id", "exists only in the admin schema")
	}
	return nil
}

// validateText checks the varchar and text columns. PostgreSQL counts
// varchar(n) in characters, so the limits do too.
func (e *Event) validateText() error {
	for _, f := range []struct {
		name, v string
		max     int // 0: unlimited
	}{
		{"aggregate_type", e.AggregateType, MaxAggregateTypeLen},
		{"source_service", e.SourceService, MaxSourceServiceLen},
		{"source_version", e.SourceVersion, MaxSourceVersionLen},
		{"queue_name", e.QueueName, MaxQueueNameLen},
		{"message_id", e.MessageID, MaxMessageIDLen},
		{"partition_key", e.PartitionKey, MaxPartitionKeyLen},
		{"error_message", e.ErrorMessage, 0},
	} {
		// Plain ASCII (the usual case) is storable and one byte per
		// character: one pass instead of three.
		n := len(f.v)
		if !plainASCII(f.v) {
			if !StorableText(f.v) {
				return fieldErr(f.name, "must be UTF-8 without NUL bytes")
			}
			n = utf8.RuneCountInString(f.v)
		}
		if f.max > 0 && n > f.max {
			return fieldErr(f.name, "longer than %d characters", f.max)
		}
	}
	return nil
}

// StorableText reports whether PostgreSQL can store s in a text column:
// valid UTF-8 without NUL bytes.
func StorableText(s string) bool {
	return plainASCII(s) || utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// plainASCII reports whether s is ASCII without NUL bytes.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i]-1 >= utf8.RuneSelf-1 { // 0 wraps to 0xff
			return false
		}
	}
	return true
}

// StorableJSON reports whether PostgreSQL can store the valid JSON text b
// as jsonb, which refuses invalid UTF-8 and the \u0000 escape.
func StorableJSON(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+5 < len(b) && b[i+1] == 'u' && string(b[i+2:i+6]) == "0000" {
			return false
		}
		i++ // skip the escaped character, which may itself be a backslash
	}
	return true
}

// isJSONObject reports whether b is one valid JSON object.
func isJSONObject(b []byte) bool {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i == len(b) || b[i] != '{' {
		return false
	}
	return validJSON(b)
}

// startsObject reports whether s, after JSON whitespace, starts with '{'.
func startsObject(s string) bool {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i < len(s) && s[i] == '{'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// ValidateType checks the platform's two-segment grammar `^[a-z_]+\.[a-z_]+$`
// (for example `users.created`).
func ValidateType(t string) error {
	if t == "" {
		return fieldErr("event_type", "required")
	}
	if len(t) > MaxEventTypeLen {
		return fieldErr("event_type", "longer than %d bytes", MaxEventTypeLen)
	}
	if !validTypeGrammar(t) {
		return fieldErr("event_type", "%q does not match <category>.<action> with [a-z_] segments", t)
	}
	return nil
}

// validTypeGrammar is `^[a-z_]+\.[a-z_]+$` without a regexp: it runs for
// every event published and every entry decoded.
func validTypeGrammar(t string) bool {
	dot := -1
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == '.':
			if dot >= 0 {
				return false
			}
			dot = i
		case (c < 'a' || c > 'z') && c != '_':
			return false
		}
	}
	return dot > 0 && dot < len(t)-1
}

// Category is the first segment of an event type: `users` for `users.created`.
// It names the event's stream (DESIGN §2).
func Category(eventType string) string {
	for i := 0; i < len(eventType); i++ {
		if eventType[i] == '.' {
			return eventType[:i]
		}
	}
	return eventType
}
