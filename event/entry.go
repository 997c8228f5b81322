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
func FormatTime(t time.Time) string {
	var buf [len(TimeLayout)]byte
	return string(AppendTime(buf[:0], t))
}

// AppendTime appends t formatted with TimeLayout in UTC, as FormatTime
// returns it, without allocating. Years 0..9999, all that TimeLayout has
// room for, take a direct path: time.Format spends most of its time
// interpreting the layout, and every entry carries one or two times.
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, TimeLayout)
	}
	hour, minute, sec := t.Clock()
	ns := t.Nanosecond()
	dst = append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.')
	var frac [9]byte
	for i := len(frac) - 1; i >= 0; i-- {
		frac[i] = byte('0' + ns%10)
		ns /= 10
	}
	dst = append(dst, frac[:]...)
	return append(dst, 'Z')
}

// ParseTime accepts any RFC 3339 time (what redis-py or a shell script would
// send), with `T` or, as Python's str(datetime) writes it, a space between
// date and time, and, leniently, an ISO time without a zone, taken as UTC.
// The result is normalized to UTC microseconds. Times whose UTC year falls
// outside 1..9999 are refused: TimeLayout could not encode them back.
func ParseTime(s string) (time.Time, error) {
	if t, ok := parseLayoutTime(s); ok {
		return t, nil
	}
	return parseTime(s)
}

// parseLayoutTime parses a time in TimeLayout, as every entry of this
// module's publisher carries, without time.Parse's general machinery (a
// third of a worker's decoding of an entry went to its two times). ok is
// false for anything else, including years ParseTime refuses; then
// parseTime decides.
func parseLayoutTime(s string) (t time.Time, ok bool) {
	if len(s) != len(TimeLayout) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[29] != 'Z' {
		return time.Time{}, false
	}
	num := func(lo, hi int) int {
		n := 0
		for i := lo; i < hi; i++ {
			c := s[i] - '0'
			if c > 9 {
				return -1
			}
			n = n*10 + int(c)
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec, ns := num(11, 13), num(14, 16), num(17, 19), num(20, 29)
	if year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 || ns < 0 {
		return time.Time{}, false
	}
	unix := (daysFromCivil(year, month, day)*24+int64(hour))*3600 + int64(minute)*60 + int64(sec)
	// As Normalize: UTC, truncated to microseconds.
	return time.Unix(unix, int64(ns-ns%1000)).UTC(), true
}

// daysIn is the number of days of month (1..12) in year.
func daysIn(month, year int) int {
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		return 29
	}
	return int("\x1f\x1c\x1f\x1e\x1f\x1e\x1f\x1f\x1e\x1f\x1e\x1f"[month-1])
}

// daysFromCivil is the number of days from 1970-01-01 to the date
// (proleptic Gregorian; H. Hinnant's days_from_civil).
func daysFromCivil(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := y / 400 // y >= 0 here: year >= 1
	yoe := y - era*400
	mp := int64(month+9) % 12 // March = 0
	doy := (153*mp+2)/5 + int64(day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// parseTime is ParseTime for any form it accepts.
func parseTime(s string) (time.Time, error) {
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
//
// The values share one string: the ids, numbers and times it formats, and
// copies of event_data and event_metadata, are written into one buffer
// that the values then slice, so an entry costs one allocation rather than
// one per value.
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
	var w entryText
	id := w.uuid(e.ID)
	aggregateID := w.uuid(e.AggregateID)
	version := w.int(e.EventVersion)
	correlationID := w.uuid(e.CorrelationID)
	causationID := w.uuid(e.CausationID)
	createdAt := w.time(e.CreatedAt)
	scheduledAt := createdAt // usually equal; the same instant has the same text
	if !e.ScheduledAt.Equal(e.CreatedAt) {
		scheduledAt = w.time(e.ScheduledAt)
	}
	tenantID := w.uuid(e.TenantID)
	organizationID := w.uuid(e.OrganizationID)
	userID := w.uuid(e.UserID)
	maxRetries := w.int(e.MaxRetries)
	text := w.finish(data, meta)
	value := func(s span) string { return text[s.lo:s.hi] }

	dst = append(dst,
		FieldID, value(id),
		FieldEventType, e.EventType,
		FieldSchema, e.Schema,
		FieldAggregateID, value(aggregateID),
		FieldAggregateType, e.AggregateType,
		FieldEventVersion, value(version),
	)
	dst = appendStr(dst, FieldCorrelationID, value(correlationID))
	dst = appendStr(dst, FieldCausationID, value(causationID))
	dst = appendStr(dst, FieldPriority, string(e.Priority))
	dst = appendStr(dst, FieldScheduledAt, value(scheduledAt))
	dst = appendStr(dst, FieldPartitionKey, e.PartitionKey)
	dst = appendStr(dst, FieldTenantID, value(tenantID))
	dst = appendStr(dst, FieldOrganizationID, value(organizationID))
	dst = appendStr(dst, FieldUserID, value(userID))
	dst = appendStr(dst, FieldSourceService, e.SourceService)
	dst = appendStr(dst, FieldSourceVersion, e.SourceVersion)
	dst = append(dst, FieldMaxRetries, value(maxRetries))
	dst = appendStr(dst, FieldCreatedAt, value(createdAt))
	dst = append(dst, FieldEventData, text[len(text)-len(data)-len(meta):len(text)-len(meta)])
	if meta != nil {
		dst = append(dst, FieldEventMetadata, text[len(text)-len(meta):])
	}
	return dst, nil
}

// entryTextMax bounds what entryText formats: seven UUIDs, two times and
// two ints.
const entryTextMax = 7*36 + 2*len(TimeLayout) + 2*20

// entryText formats an entry's values on the stack and copies them, with
// event_data and event_metadata, into one string.
type entryText struct {
	buf [entryTextMax]byte
	n   int
}

// span is where a value lies in the text; the empty span is an empty
// (left out) value.
type span struct{ lo, hi int }

func (w *entryText) uuid(id uuid.UUID) span {
	if id == uuid.Nil {
		return span{}
	}
	return w.span(len(AppendID(w.buf[w.n:w.n], id)))
}

func (w *entryText) int(n int) span {
	return w.span(len(strconv.AppendInt(w.buf[w.n:w.n], int64(n), 10)))
}

func (w *entryText) time(t time.Time) span {
	if t.IsZero() {
		return span{}
	}
	return w.span(len(AppendTime(w.buf[w.n:w.n], t)))
}

// span records the n bytes just appended at w.n. The appends above write
// into w.buf in place: entryTextMax leaves room for every value.
func (w *entryText) span(n int) span {
	s := span{w.n, w.n + n}
	w.n += n
	return s
}

// finish returns the formatted values followed by data and meta, in one
// allocation.
func (w *entryText) finish(data, meta []byte) string {
	var b strings.Builder
	b.Grow(w.n + len(data) + len(meta))
	b.Write(w.buf[:w.n])
	b.Write(data)
	b.Write(meta)
	return b.String()
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

func appendStr(dst []string, k, v string) []string {
	if v == "" {
		return dst
	}
	return append(dst, k, v)
}

// DecodeValues decodes an entry in the form go-redis returns
// (map[string]interface{} of strings).
func DecodeValues(values map[string]any) (*Event, error) {
	var d decoder
	for k, v := range values {
		switch s := v.(type) {
		case string:
			d.vals.set(k, s)
		case []byte:
			d.vals.set(k, string(s))
		default:
			d.vals.setBad(k, fmt.Sprintf("%T", v))
		}
	}
	return d.decode()
}

// DecodeFields decodes an entry given as flat pairs (key, value, key,
// value, ...), as the worker's read connection returns it. A key given
// twice takes its last value, as in the map forms. An odd number of strings
// is not an entry (ErrInvalid).
func DecodeFields(kv []string) (*Event, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("%w: %d field strings, not key/value pairs", ErrInvalid, len(kv))
	}
	var d decoder
	for i := 0; i < len(kv); i += 2 {
		d.vals.set(kv[i], kv[i+1])
	}
	return d.decode()
}

// DecodeEntry decodes a stream entry and validates the event. Unknown fields
// are ignored; missing optional fields take the column defaults. A bad entry
// yields a *FieldError (errors.Is(err, ErrInvalid)) and no event. The event's
// QueueName and MessageID are left for the caller, who knows the stream and id.
func DecodeEntry(fields map[string]string) (*Event, error) {
	var d decoder
	for k, v := range fields {
		d.vals.set(k, v)
	}
	return d.decode()
}

// entryValues holds an entry's known fields by their place in
// EntryFields: filled in one pass over the entry, whatever its form, and
// read by decode without a map.
type entryValues struct {
	v   [numEntryFields]string
	has uint32 // bit i: EntryFields[i] is present
	bad uint32 // bit i: present but not a string (v holds its type)
}

func (ev *entryValues) set(k, v string) {
	if i := fieldIndex(k); i >= 0 {
		ev.v[i] = v
		ev.has |= 1 << i
		ev.bad &^= 1 << i
	}
}

func (ev *entryValues) setBad(k, typ string) {
	if i := fieldIndex(k); i >= 0 {
		ev.v[i] = typ
		ev.has |= 1 << i
		ev.bad |= 1 << i
	}
}

func (ev *entryValues) get(k string) (string, bool, error) {
	i := fieldIndex(k)
	if i < 0 || ev.has&(1<<i) == 0 {
		return "", false, nil
	}
	if ev.bad&(1<<i) != 0 {
		return "", true, fieldErr(k, "not a string (%s)", ev.v[i])
	}
	return ev.v[i], true, nil
}

// numEntryFields is len(EntryFields), as a constant to size entryValues.
const numEntryFields = 20

// fieldIndex is k's place in EntryFields, or -1 for a field that is not
// an event's. (A switch: the compiler's string search beats hashing k.)
func fieldIndex(k string) int {
	switch k {
	case FieldID:
		return 0
	case FieldEventType:
		return 1
	case FieldSchema:
		return 2
	case FieldAggregateID:
		return 3
	case FieldAggregateType:
		return 4
	case FieldEventVersion:
		return 5
	case FieldCorrelationID:
		return 6
	case FieldCausationID:
		return 7
	case FieldPriority:
		return 8
	case FieldScheduledAt:
		return 9
	case FieldPartitionKey:
		return 10
	case FieldTenantID:
		return 11
	case FieldOrganizationID:
		return 12
	case FieldUserID:
		return 13
	case FieldSourceService:
		return 14
	case FieldSourceVersion:
		return 15
	case FieldMaxRetries:
		return 16
	case FieldCreatedAt:
		return 17
	case FieldEventData:
		return 18
	case FieldEventMetadata:
		return 19
	}
	return -1
}

// decode builds and validates the event of d.vals.
func (d *decoder) decode() (*Event, error) {
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
// It holds the entry's values itself (not a pointer to them), so that
// they stay on the caller's stack.
type decoder struct {
	vals entryValues
	err  error
}

func (d *decoder) fail(field, format string, args ...any) {
	if d.err == nil {
		d.err = fieldErr(field, format, args...)
	}
}

func (d *decoder) opt(k string) (string, bool) {
	v, ok, err := d.vals.get(k)
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
