package event

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// jsonEvent is the JSON form of an Event: the `events` column names plus
// `schema`. Pointers let NULL be null; every key is always written, so a
// consumer (a webhook receiver, a script) sees one stable shape.
type jsonEvent struct {
	ID                    *string         `json:"id"`
	EventType             *string         `json:"event_type"`
	Schema                *string         `json:"schema"`
	AggregateID           *string         `json:"aggregate_id"`
	AggregateType         *string         `json:"aggregate_type"`
	EventVersion          *int32          `json:"event_version"`
	CorrelationID         *string         `json:"correlation_id"`
	CausationID           *string         `json:"causation_id"`
	EventData             json.RawMessage `json:"event_data"`
	EventMetadata         *Metadata       `json:"event_metadata"`
	Status                *string         `json:"status"`
	Priority              *string         `json:"priority"`
	ScheduledAt           *string         `json:"scheduled_at"`
	ProcessingStartedAt   *string         `json:"processing_started_at"`
	ProcessingCompletedAt *string         `json:"processing_completed_at"`
	ProcessingDurationMS  *int32          `json:"processing_duration_ms"`
	RetryCount            *int32          `json:"retry_count"`
	MaxRetries            *int32          `json:"max_retries"`
	ErrorMessage          *string         `json:"error_message"`
	ErrorDetails          json.RawMessage `json:"error_details"`
	TenantID              *string         `json:"tenant_id"`
	OrganizationID        *string         `json:"organization_id"`
	UserID                *string         `json:"user_id"`
	SourceService         *string         `json:"source_service"`
	SourceVersion         *string         `json:"source_version"`
	QueueName             *string         `json:"queue_name"`
	MessageID             *string         `json:"message_id"`
	PartitionKey          *string         `json:"partition_key"`
	CreatedAt             *string         `json:"created_at"`
	UpdatedAt             *string         `json:"updated_at"`
	DeletedAt             *string         `json:"deleted_at"`
}

// MarshalJSON encodes the event as one JSON object keyed by the `events`
// column names plus `schema`. Every key is present; a NULL column (the zero
// UUID, "", the zero time, nil JSON, nil duration, empty metadata) is null.
// Integers (event_version, retry_count, max_retries) are always numbers,
// since zero is a real value for them. Times use TimeLayout (RFC 3339, UTC).
//
// The receiver is a value so that an Event held by value (in a struct or a
// slice) encodes the same way as a *Event.
func (e Event) MarshalJSON() ([]byte, error) {
	j := jsonEvent{
		ID:                    uuidPtr(e.ID),
		EventType:             strPtr(e.EventType),
		Schema:                strPtr(e.Schema),
		AggregateID:           uuidPtr(e.AggregateID),
		AggregateType:         strPtr(e.AggregateType),
		EventVersion:          int32Ptr(e.EventVersion),
		CorrelationID:         uuidPtr(e.CorrelationID),
		CausationID:           uuidPtr(e.CausationID),
		EventData:             rawOrNull(e.Data),
		Status:                strPtr(string(e.Status)),
		Priority:              strPtr(string(e.Priority)),
		ScheduledAt:           timePtr(e.ScheduledAt),
		ProcessingStartedAt:   timePtr(e.ProcessingStartedAt),
		ProcessingCompletedAt: timePtr(e.ProcessingCompletedAt),
		ProcessingDurationMS:  e.ProcessingDurationMS,
		RetryCount:            int32Ptr(e.RetryCount),
		MaxRetries:            int32Ptr(e.MaxRetries),
		ErrorMessage:          strPtr(e.ErrorMessage),
		ErrorDetails:          rawOrNull(e.ErrorDetails),
		TenantID:              uuidPtr(e.TenantID),
		OrganizationID:        uuidPtr(e.OrganizationID),
		UserID:                uuidPtr(e.UserID),
		SourceService:         strPtr(e.SourceService),
		SourceVersion:         strPtr(e.SourceVersion),
		QueueName:             strPtr(e.QueueName),
		MessageID:             strPtr(e.MessageID),
		PartitionKey:          strPtr(e.PartitionKey),
		CreatedAt:             timePtr(e.CreatedAt),
		UpdatedAt:             timePtr(e.UpdatedAt),
		DeletedAt:             timePtr(e.DeletedAt),
	}
	if !e.Metadata.IsZero() {
		m := e.Metadata
		j.EventMetadata = &m
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode event %s as JSON: %w", e.ID, err)
	}
	return b, nil
}

// UnmarshalJSON decodes the form MarshalJSON writes. It is its exact inverse
// for events whose times are normalized (see Normalize), with two defaults
// taken from the columns: an absent or null event_version is 1 and an absent
// or null max_retries is 3, as DecodeEntry does. Every other absent or null
// key is the zero value (NULL). Unknown keys are ignored. Times are parsed
// with ParseTime and so normalized to UTC microseconds.
//
// A value of the wrong type or form yields a *FieldError naming the key
// (errors.Is(err, ErrInvalid)). UnmarshalJSON does not call Validate; callers
// that accept events from outside must. A top-level null leaves e unchanged,
// as encoding/json expects of an Unmarshaler.
func (e *Event) UnmarshalJSON(b []byte) error {
	trimmed := bytes.TrimSpace(b)
	if bytes.Equal(trimmed, []byte("null")) {
		return nil
	}
	if !isJSONObject(trimmed) {
		return fmt.Errorf("%w: event JSON must be an object", ErrInvalid)
	}
	var j jsonEvent
	if err := json.Unmarshal(trimmed, &j); err != nil {
		return jsonFieldError(err)
	}
	d := jsonDecoder{}
	out := Event{
		ID:                    d.uuid("id", j.ID),
		EventType:             deref(j.EventType),
		Schema:                deref(j.Schema),
		AggregateID:           d.uuid("aggregate_id", j.AggregateID),
		AggregateType:         deref(j.AggregateType),
		EventVersion:          intOr(j.EventVersion, DefaultEventVersion),
		CorrelationID:         d.uuid("correlation_id", j.CorrelationID),
		CausationID:           d.uuid("causation_id", j.CausationID),
		Data:                  d.object("event_data", j.EventData),
		Status:                Status(deref(j.Status)),
		Priority:              Priority(deref(j.Priority)),
		ScheduledAt:           d.time("scheduled_at", j.ScheduledAt),
		ProcessingStartedAt:   d.time("processing_started_at", j.ProcessingStartedAt),
		ProcessingCompletedAt: d.time("processing_completed_at", j.ProcessingCompletedAt),
		ProcessingDurationMS:  j.ProcessingDurationMS,
		RetryCount:            intOr(j.RetryCount, 0),
		MaxRetries:            intOr(j.MaxRetries, DefaultMaxRetries),
		ErrorMessage:          deref(j.ErrorMessage),
		ErrorDetails:          d.object("error_details", j.ErrorDetails),
		TenantID:              d.uuid("tenant_id", j.TenantID),
		OrganizationID:        d.uuid("organization_id", j.OrganizationID),
		UserID:                d.uuid("user_id", j.UserID),
		SourceService:         deref(j.SourceService),
		SourceVersion:         deref(j.SourceVersion),
		QueueName:             deref(j.QueueName),
		MessageID:             deref(j.MessageID),
		PartitionKey:          deref(j.PartitionKey),
		CreatedAt:             d.time("created_at", j.CreatedAt),
		UpdatedAt:             d.time("updated_at", j.UpdatedAt),
		DeletedAt:             d.time("deleted_at", j.DeletedAt),
	}
	if j.EventMetadata != nil {
		out.Metadata = *j.EventMetadata
	}
	if d.err != nil {
		return d.err
	}
	*e = out
	return nil
}

// jsonFieldError turns encoding/json's errors into a *FieldError where the
// key is known, so callers see which field was wrong.
func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fieldErr(te.Field, "cannot hold a JSON %s", te.Value)
	}
	if errors.Is(err, ErrInvalid) {
		// Metadata.UnmarshalJSON already wrapped ErrInvalid and named the field.
		return err
	}
	return fmt.Errorf("%w: event JSON: %v", ErrInvalid, err)
}

// jsonDecoder keeps the first error so UnmarshalJSON reads as a field list.
type jsonDecoder struct{ err error }

func (d *jsonDecoder) fail(field, format string, args ...any) {
	if d.err == nil {
		d.err = fieldErr(field, format, args...)
	}
}

// uuid accepts only the canonical 36-character form, as DecodeEntry does.
func (d *jsonDecoder) uuid(field string, s *string) uuid.UUID {
	if s == nil || *s == "" {
		return uuid.Nil
	}
	id, err := uuid.Parse(*s)
	if err != nil || len(*s) != 36 {
		d.fail(field, "not a UUID in canonical form: %q", truncate(*s))
		return uuid.Nil
	}
	return id
}

func (d *jsonDecoder) time(field string, s *string) time.Time {
	if s == nil || *s == "" {
		return time.Time{}
	}
	t, err := ParseTime(*s)
	if err != nil {
		d.fail(field, "not an RFC 3339 time: %q", truncate(*s))
	}
	return t
}

// object returns nil for null (NULL) and refuses anything but an object.
func (d *jsonDecoder) object(field string, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if !isJSONObject(raw) {
		d.fail(field, "must be a JSON object")
		return nil
	}
	return raw
}

func uuidPtr(id uuid.UUID) *string {
	if id == uuid.Nil {
		return nil
	}
	s := id.String()
	return &s
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timePtr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := FormatTime(t)
	return &s
}

// int32Ptr narrows an int column value; Validate keeps real values far below
// the int32 limit, and an out-of-range value is clamped rather than wrapped.
func int32Ptr(n int) *int32 {
	const lo, hi = -1 << 31, 1<<31 - 1
	v := int32(max(lo, min(hi, n)))
	return &v
}

func rawOrNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func intOr(p *int32, def int) int {
	if p == nil {
		return def
	}
	return int(*p)
}

// maxJSONDepth is encoding/json's nesting limit: deeper input is invalid.
const maxJSONDepth = 10000

// validJSON reports whether b is exactly one JSON value (surrounded by
// optional whitespace). It accepts and refuses what encoding/json.Valid
// does, including its nesting limit and its leniency about invalid UTF-8
// inside strings (storableJSON checks that), but allocates nothing and
// runs several times faster: every event is validated when published and
// again when a worker decodes it. FuzzValidJSON compares the two.
func validJSON(b []byte) bool { return scanJSON(b, false) }

// storableJSON reports whether b is one JSON value, as validJSON judges it,
// that PostgreSQL can store as jsonb: valid UTF-8 and no \u0000 escape. It
// is validJSON && utf8.Valid && StorableJSON in one pass: outside strings
// only ASCII is legal JSON, so UTF-8 needs checking only inside strings, and
// the \u escapes are seen there anyway. FuzzStorableJSON compares it with
// that reference.
func storableJSON(b []byte) bool { return scanJSON(b, true) }

// storableJSONObject is storableJSON for a JSON object only.
func storableJSONObject(b []byte) bool {
	i := skipSpace(b, 0)
	return i < len(b) && b[i] == '{' && scanJSON(b, true)
}

// scanJSON is validJSON, and with storable also storableJSON.
func scanJSON(b []byte, storable bool) bool {
	// kinds is a bit per open container: 1 for an object, 0 for an array.
	// Two words cover 128 levels on the stack (a large array here made
	// every worker goroutine's stack grow); deeper input gets the rest.
	var small [2]uint64
	kinds := small[:]
	depth := 0
	i := skipSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return false
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth == maxJSONDepth {
				return false
			}
			obj := c == '{'
			if depth/64 == len(kinds) {
				kinds = append(kinds, 0)
			}
			if obj {
				kinds[depth/64] |= 1 << (depth % 64)
			} else {
				kinds[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = skipSpace(b, i+1)
			if i < len(b) && (obj && b[i] == '}' || !obj && b[i] == ']') {
				i++ // empty: the container is a complete value
				depth--
				break
			}
			if obj {
				if i = scanKey(b, i, storable); i < 0 {
					return false
				}
			}
			continue
		case '"':
			i = scanString(b, i, storable)
		case 't':
			i = scanLiteral(b, i, "true")
		case 'f':
			i = scanLiteral(b, i, "false")
		case 'n':
			i = scanLiteral(b, i, "null")
		default:
			i = scanNumber(b, i)
		}
		if i < 0 {
			return false
		}
		// A value ended before i: close containers, or go on after a comma.
		for {
			i = skipSpace(b, i)
			if depth == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			obj := kinds[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			if b[i] == ',' {
				i = skipSpace(b, i+1)
				if obj {
					if i = scanKey(b, i, storable); i < 0 {
						return false
					}
				}
				break
			}
			if obj && b[i] == '}' || !obj && b[i] == ']' {
				i++
				depth--
				continue
			}
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanKey reads `"key" :` and the whitespace after it, returning where the
// value starts, or -1.
func scanKey(b []byte, i int, storable bool) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = scanString(b, i, storable); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

// scanString reads the string starting at b[i] == '"' and returns the
// index after its closing quote, or -1. With storable it also refuses
// invalid UTF-8 and the \u0000 escape (what jsonb cannot hold).
//
// Plain ASCII is skipped 8 bytes at a time (specialByte finds the first
// byte that needs a look); that byte, and the tail shorter than a word, go
// through the exact byte loop.
func scanString(b []byte, i int, storable bool) int {
	for i++; ; {
		for i+8 <= len(b) {
			if m := specialByte(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+5 >= len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1
				}
				if storable && string(b[i+2:i+6]) == "0000" {
					return -1
				}
				i += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		case c >= utf8.RuneSelf && storable:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return -1
			}
			i += size
		default:
			i++
		}
	}
}

// specialByte returns, for the 8 bytes of w (the first in the low byte), a
// mask whose lowest set bit is the high bit of the first byte that is '"',
// '\\', a control character (< 0x20) or not ASCII (>= 0x80); 0 if none is.
// A byte's high bit is set in (q - ones) or (bs - ones) when that byte of
// w is '"' or '\\' (the XOR made it 0), in (w - 0x20*ones) when it is
// below 0x20, and in w when it is >= 0x80. Otherwise only a borrow sets
// it, and a borrow comes only from a lower byte that is itself flagged, so
// the lowest flag is exact (flags above it may not be, and are not used).
func specialByte(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	return ((q - ones) | (bs - ones) | (w - ones*0x20) | w) & highs
}

// scanNumber reads the number starting at b[i] and returns the index after
// it, or -1: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || !isDigit(b[i+1]) {
			return -1
		}
		i = skipDigits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		i = skipDigits(b, i)
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func scanLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
