package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/neo-events/neo-events/event"
)

// column is one column of `<schema>.events`: how an Event writes it and
// where a scan puts it. This list is the only place that knows the columns.
type column struct {
	name      string
	adminOnly bool
	value     func(e *event.Event, now time.Time) any
	dest      func(r *scanRow) any
	// bin appends the value in PostgreSQL's binary COPY form (length
	// prefix, then the type's binary send format), the same value value
	// returns, without pgx's generic per-value encoding.
	bin func(w *copyWriter, e *event.Event, now time.Time)
}

// columns is the `events` table in the platform's column order (DESIGN §1).
var columns = []column{
	{name: "id", value: func(e *event.Event, _ time.Time) any { return [16]byte(e.ID) }, dest: func(r *scanRow) any { return &r.id },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.uuid(e.ID) }},
	{name: "event_type", value: func(e *event.Event, _ time.Time) any { return e.EventType }, dest: func(r *scanRow) any { return &r.eventType },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.text(e.EventType) }},
	{name: "aggregate_id", value: func(e *event.Event, _ time.Time) any { return [16]byte(e.AggregateID) }, dest: func(r *scanRow) any { return &r.aggregateID },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.uuid(e.AggregateID) }},
	{name: "aggregate_type", value: func(e *event.Event, _ time.Time) any { return e.AggregateType }, dest: func(r *scanRow) any { return &r.aggregateType },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.text(e.AggregateType) }},
	{name: "event_version", value: func(e *event.Event, _ time.Time) any { return nullInt(e.EventVersion) }, dest: func(r *scanRow) any { return &r.eventVersion },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullInt4(e.EventVersion) }},
	{name: "correlation_id", value: func(e *event.Event, _ time.Time) any { return nullUUID(e.CorrelationID) }, dest: func(r *scanRow) any { return &r.correlationID },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullUUID(e.CorrelationID) }},
	{name: "causation_id", value: func(e *event.Event, _ time.Time) any { return nullUUID(e.CausationID) }, dest: func(r *scanRow) any { return &r.causationID },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullUUID(e.CausationID) }},
	{name: "event_data", value: func(e *event.Event, _ time.Time) any { return jsonObject(e.Data) }, dest: func(r *scanRow) any { return &r.data },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.jsonObject(e.Data) }},
	{name: "event_metadata", value: metadataValue, dest: func(r *scanRow) any { return &r.metadata },
		bin: binMetadata},
	{name: "status", value: func(e *event.Event, _ time.Time) any { return nullString(string(e.Status)) }, dest: func(r *scanRow) any { return &r.status },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullText(string(e.Status)) }},
	{name: "priority", value: func(e *event.Event, _ time.Time) any { return nullString(string(e.Priority)) }, dest: func(r *scanRow) any { return &r.priority },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullText(string(e.Priority)) }},
	{name: "scheduled_at", value: func(e *event.Event, _ time.Time) any { return nullTime(e.ScheduledAt) }, dest: func(r *scanRow) any { return &r.scheduledAt },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullTime(e.ScheduledAt) }},
	{name: "processing_started_at", value: func(e *event.Event, _ time.Time) any { return nullTime(e.ProcessingStartedAt) }, dest: func(r *scanRow) any { return &r.startedAt },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullTime(e.ProcessingStartedAt) }},
	{name: "processing_completed_at", value: func(e *event.Event, _ time.Time) any { return nullTime(e.ProcessingCompletedAt) }, dest: func(r *scanRow) any { return &r.completedAt },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullTime(e.ProcessingCompletedAt) }},
	{name: "processing_duration_ms", value: func(e *event.Event, _ time.Time) any { return e.ProcessingDurationMS }, dest: func(r *scanRow) any { return &r.durationMS },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.int4Ptr(e.ProcessingDurationMS) }},
	{name: "retry_count", value: func(e *event.Event, _ time.Time) any { return int32(e.RetryCount) }, dest: func(r *scanRow) any { return &r.retryCount },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.int4(int32(e.RetryCount)) }},
	{name: "max_retries", value: func(e *event.Event, _ time.Time) any { return int32(e.MaxRetries) }, dest: func(r *scanRow) any { return &r.maxRetries },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.int4(int32(e.MaxRetries)) }},
	{name: "error_message", value: func(e *event.Event, _ time.Time) any { return nullString(e.ErrorMessage) }, dest: func(r *scanRow) any { return &r.errorMessage },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullText(e.ErrorMessage) }},
	{name: "error_details", value: func(e *event.Event, _ time.Time) any { return jsonObject(e.ErrorDetails) }, dest: func(r *scanRow) any { return &r.errorDetails },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.jsonObject(e.ErrorDetails) }},
	{name: "tenant_id", adminOnly: true, value: func(e *event.Event, _ time.Time) any { return nullUUID(e.TenantID) }, dest: func(r *scanRow) any { return &r.tenantID },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullUUID(e.TenantID) }},
	{name: "organization_id", adminOnly: true, value: func(e *event.Event, _ time.Time) any { return nullUUID(e.OrganizationID) }, dest: func(r *scanRow) any { return &r.organizationID },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullUUID(e.OrganizationID) }},
	{name: "user_id", value: func(e *event.Event, _ time.Time) any { return nullUUID(e.UserID) }, dest: func(r *scanRow) any { return &r.userID },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullUUID(e.UserID) }},
	{name: "source_service", value: func(e *event.Event, _ time.Time) any { return nullString(e.SourceService) }, dest: func(r *scanRow) any { return &r.sourceService },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullText(e.SourceService) }},
	{name: "source_version", value: func(e *event.Event, _ time.Time) any { return nullString(e.SourceVersion) }, dest: func(r *scanRow) any { return &r.sourceVersion },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullText(e.SourceVersion) }},
	{name: "queue_name", value: func(e *event.Event, _ time.Time) any { return nullString(e.QueueName) }, dest: func(r *scanRow) any { return &r.queueName },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullText(e.QueueName) }},
	{name: "message_id", value: func(e *event.Event, _ time.Time) any { return nullString(e.MessageID) }, dest: func(r *scanRow) any { return &r.messageID },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullText(e.MessageID) }},
	{name: "partition_key", value: func(e *event.Event, _ time.Time) any { return nullString(e.PartitionKey) }, dest: func(r *scanRow) any { return &r.partitionKey },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullText(e.PartitionKey) }},
	{name: "created_at", value: func(e *event.Event, now time.Time) any { return timeOr(e.CreatedAt, now) }, dest: func(r *scanRow) any { return &r.createdAt },
		bin: func(w *copyWriter, e *event.Event, now time.Time) { w.time(timeOr(e.CreatedAt, now)) }},
	{name: "updated_at", value: func(e *event.Event, now time.Time) any { return timeOr(e.UpdatedAt, now) }, dest: func(r *scanRow) any { return &r.updatedAt },
		bin: func(w *copyWriter, e *event.Event, now time.Time) { w.time(timeOr(e.UpdatedAt, now)) }},
	{name: "deleted_at", value: func(e *event.Event, _ time.Time) any { return nullTime(e.DeletedAt) }, dest: func(r *scanRow) any { return &r.deletedAt },
		bin: func(w *copyWriter, e *event.Event, _ time.Time) { w.nullTime(e.DeletedAt) }},
}

// columnSet is the column list of one scope, precomputed.
type columnSet struct {
	cols  []column
	names []string
	list  string // "id, event_type, ..." for SQL text
}

var (
	adminColumns  = newColumnSet(true)
	tenantColumns = newColumnSet(false)
)

func newColumnSet(admin bool) columnSet {
	var cs columnSet
	for _, c := range columns {
		if c.adminOnly && !admin {
			continue
		}
		cs.cols = append(cs.cols, c)
		cs.names = append(cs.names, c.name)
	}
	cs.list = strings.Join(cs.names, ", ")
	return cs
}

// columnsFor returns the columns of schema's events table; schema must be valid.
func columnsFor(schema string) *columnSet {
	if schema == event.AdminSchema {
		return &adminColumns
	}
	return &tenantColumns
}

// prefixed returns the column list with each name qualified by alias.
func (cs *columnSet) prefixed(alias string) string {
	parts := make([]string, len(cs.names))
	for i, n := range cs.names {
		parts[i] = alias + "." + n
	}
	return strings.Join(parts, ", ")
}

// values returns the row e writes, in column order.
func (cs *columnSet) values(e *event.Event, now time.Time) []any {
	vals := make([]any, len(cs.cols))
	for i, c := range cs.cols {
		vals[i] = c.value(e, now)
	}
	return vals
}

// scanRow receives one row in the nullable forms pgx scans into.
type scanRow struct {
	id, aggregateID                         pgtype.UUID
	correlationID, causationID              pgtype.UUID
	tenantID, organizationID, userID        pgtype.UUID
	eventType, aggregateType                pgtype.Text
	status, priority, errorMessage          pgtype.Text
	sourceService, sourceVersion, queueName pgtype.Text
	messageID, partitionKey                 pgtype.Text
	eventVersion, durationMS                pgtype.Int4
	retryCount, maxRetries                  pgtype.Int4
	data, metadata, errorDetails            []byte
	scheduledAt, startedAt, completedAt     pgtype.Timestamptz
	createdAt, updatedAt, deletedAt         pgtype.Timestamptz
}

func (cs *columnSet) dests(r *scanRow) []any {
	d := make([]any, len(cs.cols))
	for i, c := range cs.cols {
		d[i] = c.dest(r)
	}
	return d
}

// scanEvent reads one row selected with cs.list.
func (cs *columnSet) scanEvent(row interface{ Scan(...any) error }, schema string) (*event.Event, error) {
	var r scanRow
	if err := row.Scan(cs.dests(&r)...); err != nil {
		return nil, err
	}
	return r.event(schema)
}

func (r *scanRow) event(schema string) (*event.Event, error) {
	e := &event.Event{
		ID:                    uuidOf(r.id),
		EventType:             r.eventType.String,
		Schema:                schema,
		AggregateID:           uuidOf(r.aggregateID),
		AggregateType:         r.aggregateType.String,
		EventVersion:          int(r.eventVersion.Int32),
		CorrelationID:         uuidOf(r.correlationID),
		CausationID:           uuidOf(r.causationID),
		Data:                  json.RawMessage(r.data),
		Status:                event.Status(r.status.String),
		Priority:              event.Priority(r.priority.String),
		ScheduledAt:           timeOf(r.scheduledAt),
		ProcessingStartedAt:   timeOf(r.startedAt),
		ProcessingCompletedAt: timeOf(r.completedAt),
		RetryCount:            int(r.retryCount.Int32),
		MaxRetries:            int(r.maxRetries.Int32),
		ErrorMessage:          r.errorMessage.String,
		TenantID:              uuidOf(r.tenantID),
		OrganizationID:        uuidOf(r.organizationID),
		UserID:                uuidOf(r.userID),
		SourceService:         r.sourceService.String,
		SourceVersion:         r.sourceVersion.String,
		QueueName:             r.queueName.String,
		MessageID:             r.messageID.String,
		PartitionKey:          r.partitionKey.String,
		CreatedAt:             timeOf(r.createdAt),
		UpdatedAt:             timeOf(r.updatedAt),
		DeletedAt:             timeOf(r.deletedAt),
	}
	if r.durationMS.Valid {
		d := r.durationMS.Int32
		e.ProcessingDurationMS = &d
	}
	if len(r.metadata) > 0 {
		if err := json.Unmarshal(r.metadata, &e.Metadata); err != nil {
			return nil, fmt.Errorf("event %s: event_metadata: %w", e.ID, err)
		}
	}
	// '{}' is the column default, which an Event spells as nil.
	if len(r.errorDetails) > 0 && !isEmptyObject(r.errorDetails) {
		e.ErrorDetails = json.RawMessage(r.errorDetails)
	}
	return e, nil
}

func isEmptyObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil && len(m) == 0
}

func uuidOf(u pgtype.UUID) uuid.UUID {
	if !u.Valid {
		return uuid.Nil
	}
	return uuid.UUID(u.Bytes)
}

func timeOf(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return event.Normalize(t.Time)
}

// Encoders for the zero-value-means-NULL convention of package event.

// nullUUID returns [16]byte, not uuid.UUID: pgx encodes the array
// directly, while uuid.UUID goes through driver.Valuer and a string.
func nullUUID(u uuid.UUID) any {
	if u == uuid.Nil {
		return nil
	}
	return [16]byte(u)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n int) any {
	if n == 0 {
		return nil
	}
	return int32(n)
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return event.Normalize(t)
}

func timeOr(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return event.Normalize(t)
}

// jsonObject writes nil as '{}', the column default, since COPY bypasses defaults.
func jsonObject(b json.RawMessage) any {
	if len(b) == 0 {
		return json.RawMessage(`{}`)
	}
	return b
}

func metadataValue(e *event.Event, _ time.Time) any {
	if e.Metadata.IsZero() {
		return json.RawMessage(`{}`)
	}
	b, err := e.Metadata.MarshalJSON()
	if err != nil {
		// checkEvents refuses such metadata before any value is encoded.
		return json.RawMessage(`{}`)
	}
	return json.RawMessage(b)
}

// PostgreSQL's binary COPY format: a header (signature, flags, header
// extension length), then per row a field count and each field as a length
// (-1 for NULL) and the type's binary send format, then a trailer.
const (
	copyHeader  = "PGCOPY\n\xff\r\n\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"
	copyTrailer = "\xff\xff"
	// pgEpochMicros is 2000-01-01T00:00:00Z, timestamptz's zero, in Unix microseconds.
	pgEpochMicros = 946684800 * 1000000
)

// copyWriter appends rows in the binary COPY format. The first encoding
// error is kept in err; later appends still run but the buffer is then
// discarded by the caller.
type copyWriter struct {
	buf []byte
	err error
}

// row appends e as one row of cs.
func (w *copyWriter) row(cs *columnSet, e *event.Event, now time.Time) {
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(cs.cols)))
	for i := range cs.cols {
		cs.cols[i].bin(w, e, now)
	}
}

func (w *copyWriter) null() { w.buf = append(w.buf, 0xff, 0xff, 0xff, 0xff) }

func (w *copyWriter) length(n int) { w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(n)) }

func (w *copyWriter) uuid(u uuid.UUID) {
	w.length(16)
	w.buf = append(w.buf, u[:]...)
}

func (w *copyWriter) nullUUID(u uuid.UUID) {
	if u == uuid.Nil {
		w.null()
		return
	}
	w.uuid(u)
}

// text is the binary form of text, varchar and enum labels alike: the bytes.
func (w *copyWriter) text(s string) {
	w.length(len(s))
	w.buf = append(w.buf, s...)
}

func (w *copyWriter) nullText(s string) {
	if s == "" {
		w.null()
		return
	}
	w.text(s)
}

func (w *copyWriter) int4(n int32) {
	w.length(4)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(n))
}

func (w *copyWriter) nullInt4(n int) {
	if n == 0 {
		w.null()
		return
	}
	w.int4(int32(n))
}

func (w *copyWriter) int4Ptr(p *int32) {
	if p == nil {
		w.null()
		return
	}
	w.int4(*p)
}

// time writes microseconds since 2000-01-01 UTC, rounding down like
// event.Normalize (and pgx).
func (w *copyWriter) time(t time.Time) {
	us := t.Unix()*1000000 + int64(t.Nanosecond())/1000
	w.length(8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(us-pgEpochMicros))
}

func (w *copyWriter) nullTime(t time.Time) {
	if t.IsZero() {
		w.null()
		return
	}
	w.time(t)
}

// jsonb is a version byte (1) and the JSON text.
func (w *copyWriter) jsonb(b []byte) {
	w.length(len(b) + 1)
	w.buf = append(w.buf, 1)
	w.buf = append(w.buf, b...)
}

// jsonObject writes nil as '{}', the column default, since COPY bypasses defaults.
func (w *copyWriter) jsonObject(b json.RawMessage) {
	if len(b) == 0 {
		b = json.RawMessage(`{}`)
	}
	w.jsonb(b)
}

func binMetadata(w *copyWriter, e *event.Event, _ time.Time) {
	if e.Metadata.IsZero() {
		w.jsonb([]byte(`{}`))
		return
	}
	b, err := e.Metadata.MarshalJSON()
	if err != nil {
		if w.err == nil {
			w.err = fmt.Errorf("event %s: event_metadata: %w: %v", e.ID, event.ErrInvalid, err)
		}
		w.null()
		return
	}
	w.jsonb(b)
}
