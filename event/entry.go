package event

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Stream entry field names (DESIGN §2): the `events` column names, plus schema.
const (
	FieldID             = "id"
	FieldEventType      = "event_type"
	FieldSchema         = "schema"
	FieldAggregateID    = "aggregate_id"
	FieldAggregateType  = "aggregate_type"
	FieldEventVersion   = "event_version"
	FieldCorrelationID  = "correlation_id"
	FieldCausationID    = "causation_id"
	FieldPriority       = "priority"
	FieldScheduledAt    = "scheduled_at"
	FieldPartitionKey   = "partition_key"
	FieldTenantID       = "tenant_id"
	FieldOrganizationID = "organization_id"
	FieldUserID         = "user_id"
	FieldSourceService  = "source_service"
	FieldSourceVersion  = "source_version"
	FieldMaxRetries     = "max_retries"
	FieldCreatedAt      = "created_at"
	FieldEventData      = "event_data"
	FieldEventMetadata  = "event_metadata"
)

// EntryFields lists every field an event entry may carry, in encoding order.
var EntryFields = []string{
	FieldID, FieldEventType, FieldSchema, FieldAggregateID, FieldAggregateType, FieldEventVersion,
	FieldCorrelationID, FieldCausationID, FieldPriority, FieldScheduledAt, FieldPartitionKey,
	FieldTenantID, FieldOrganizationID, FieldUserID, FieldSourceService, FieldSourceVersion,
	FieldMaxRetries, FieldCreatedAt, FieldEventData, FieldEventMetadata,
}

// TimeLayout is how timestamps travel in entries: RFC 3339, UTC, always nine
// fractional digits, so equal times encode to equal bytes.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// FormatTime formats t with TimeLayout in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime accepts any RFC 3339 time (what redis-py or a shell script would
// send), with `T` or, as Python's str(datetime) writes it, a space between
// date and time, and, leniently, an ISO time without a zone, taken as UTC.
// The result is normalized to UTC microseconds. Times whose UTC year falls
// outside 1..9999 are refused: TimeLayout could not encode them back.
func ParseTime(s string) (time.Time, error) {
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		var err2 error
		t, err2 = time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
		if err2 != nil {
			return time.Time{}, err
		}
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("time %q: year %d is outside 1..9999", truncate(s), y)
	}
	return Normalize(t), nil
}

// AppendEntry appends the event's stream entry to dst as field, value pairs
// (the form XADD takes). Empty optional fields are left out. The event should
// be valid; AppendEntry does not validate.
func (e *Event) AppendEntry(dst []string) ([]string, error) {
	meta := []byte(nil)
	if !e.Metadata.IsZero() {
		var err error
		if meta, err = e.Metadata.MarshalJSON(); err != nil {
			return dst, fmt.Errorf("encode %s: %w", FieldEventMetadata, err)
		}
	}
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	dst = append(dst,
		FieldID, e.ID.String(),
		FieldEventType, e.EventType,
		FieldSchema, e.Schema,
		FieldAggregateID, e.AggregateID.String(),
		FieldAggregateType, e.AggregateType,
		FieldEventVersion, strconv.Itoa(e.EventVersion),
	)
	dst = appendUUID(dst, FieldCorrelationID, e.CorrelationID)
	dst = appendUUID(dst, FieldCausationID, e.CausationID)
	dst = appendStr(dst, FieldPriority, string(e.Priority))
	dst = appendTime(dst, FieldScheduledAt, e.ScheduledAt)
	dst = appendStr(dst, FieldPartitionKey, e.PartitionKey)
	dst = appendUUID(dst, FieldTenantID, e.TenantID)
	dst = appendUUID(dst, FieldOrganizationID, e.OrganizationID)
	dst = appendUUID(dst, FieldUserID, e.UserID)
	dst = appendStr(dst, FieldSourceService, e.SourceService)
	dst = appendStr(dst, FieldSourceVersion, e.SourceVersion)
	dst = append(dst, FieldMaxRetries, strconv.Itoa(e.MaxRetries))
	dst = appendTime(dst, FieldCreatedAt, e.CreatedAt)
	dst = append(dst, FieldEventData, string(data))
	if meta != nil {
		dst = append(dst, FieldEventMetadata, string(meta))
	}
	return dst, nil
}

// Entry returns the event's stream entry as a map.
func (e *Event) Entry() (map[string]string, error) {
	kv, err := e.AppendEntry(make([]string, 0, 2*len(EntryFields)))
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m, nil
}

func appendUUID(dst []string, k string, id uuid.UUID) []string {
	if id == uuid.Nil {
		return dst
	}
	return append(dst, k, id.String())
}

func appendStr(dst []string, k, v string) []string {
	if v == "" {
		return dst
	}
	return append(dst, k, v)
}

func appendTime(dst []string, k string, t time.Time) []string {
	if t.IsZero() {
		return dst
	}
	return append(dst, k, FormatTime(t))
}

// DecodeValues decodes an entry in the form go-redis returns
// (map[string]interface{} of strings).
func DecodeValues(values map[string]any) (*Event, error) {
	return decode(func(k string) (string, bool, error) {
		v, ok := values[k]
		if !ok {
			return "", false, nil
		}
		switch s := v.(type) {
		case string:
			return s, true, nil
		case []byte:
			return string(s), true, nil
		default:
			return "", true, fieldErr(k, "not a string (%T)", v)
		}
	})
}

// DecodeEntry decodes a stream entry and validates the event. Unknown fields
// are ignored; missing optional fields take the column defaults. A bad entry
// yields a *FieldError (errors.Is(err, ErrInvalid)) and no event. The event's
// QueueName and MessageID are left for the caller, who knows the stream and id.
func DecodeEntry(fields map[string]string) (*Event, error) {
	return decode(func(k string) (string, bool, error) {
		v, ok := fields[k]
		return v, ok, nil
	})
}

type lookupFunc func(k string) (string, bool, error)

func decode(get lookupFunc) (*Event, error) {
	d := decoder{get: get}
	e := &Event{
		ID:            d.uuid(FieldID, true),
		EventType:     d.str(FieldEventType, true),
		Schema:        d.str(FieldSchema, true),
		AggregateID:   d.uuid(FieldAggregateID, true),
		AggregateType: d.str(FieldAggregateType, true),
		EventVersion:  d.int(FieldEventVersion, DefaultEventVersion),
		CorrelationID: d.uuid(FieldCorrelationID, false),
		CausationID:   d.uuid(FieldCausationID, false),
		Priority:      Priority(d.str(FieldPriority, false)),
		ScheduledAt:   d.time(FieldScheduledAt),
		PartitionKey:  d.str(FieldPartitionKey, false),

		TenantID:       d.uuid(FieldTenantID, false),
		OrganizationID: d.uuid(FieldOrganizationID, false),
		UserID:         d.uuid(FieldUserID, false),
		SourceService:  d.str(FieldSourceService, false),
		SourceVersion:  d.str(FieldSourceVersion, false),
		MaxRetries:     d.int(FieldMaxRetries, DefaultMaxRetries),
		CreatedAt:      d.time(FieldCreatedAt),
		Status:         StatusPending,
	}
	if data := d.str(FieldEventData, true); d.err == nil {
		e.Data = json.RawMessage(data)
	}
	if meta, ok := d.opt(FieldEventMetadata); ok && d.err == nil {
		// UnmarshalJSON accepts only valid JSON that is an object or null,
		// so an object is whatever it accepted that starts with '{'.
		if err := e.Metadata.UnmarshalJSON([]byte(meta)); err != nil || !startsObject(meta) {
			d.fail(FieldEventMetadata, "must be a JSON object")
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if e.Priority == "" {
		e.Priority = PriorityNormal
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// decoder keeps the first error so decode reads as a list of fields.
type decoder struct {
	get lookupFunc
	err error
}

func (d *decoder) fail(field, format string, args ...any) {
	if d.err == nil {
		d.err = fieldErr(field, format, args...)
	}
}

func (d *decoder) opt(k string) (string, bool) {
	v, ok, err := d.get(k)
	if err != nil {
		if d.err == nil {
			d.err = err
		}
		return "", false
	}
	return v, ok && v != ""
}

func (d *decoder) str(k string, required bool) string {
	v, ok := d.opt(k)
	if !ok && required {
		d.fail(k, "required")
	}
	return v
}

func (d *decoder) uuid(k string, required bool) uuid.UUID {
	v := d.str(k, required)
	if v == "" {
		return uuid.Nil
	}
	id, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		d.fail(k, "not a UUID in canonical form: %q", truncate(v))
		return uuid.Nil
	}
	return id
}

func (d *decoder) int(k string, def int) int {
	v, ok := d.opt(k)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil {
		d.fail(k, "not an integer: %q", truncate(v))
		return def
	}
	return int(n)
}

func (d *decoder) time(k string) time.Time {
	v, ok := d.opt(k)
	if !ok {
		return time.Time{}
	}
	t, err := ParseTime(v)
	if err != nil {
		d.fail(k, "not an RFC 3339 time: %q", truncate(v))
	}
	return t
}

// String is a short description for logs: type, id and schema.
func (e *Event) String() string {
	return fmt.Sprintf("%s %s in %s", e.EventType, e.ID, e.Schema)
}
