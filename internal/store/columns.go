package store

import (
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
}

// columns is the `events` table in the platform's column order (DESIGN §1).
var columns = []column{
	{name: "id", value: func(e *event.Event, _ time.Time) any { return [16]byte(e.ID) }, dest: func(r *scanRow) any { return &r.id }},
	{name: "event_type", value: func(e *event.Event, _ time.Time) any { return e.EventType }, dest: func(r *scanRow) any { return &r.eventType }},
	{name: "aggregate_id", value: func(e *event.Event, _ time.Time) any { return [16]byte(e.AggregateID) }, dest: func(r *scanRow) any { return &r.aggregateID }},
	{name: "aggregate_type", value: func(e *event.Event, _ time.Time) any { return e.AggregateType }, dest: func(r *scanRow) any { return &r.aggregateType }},
	{name: "event_version", value: func(e *event.Event, _ time.Time) any { return nullInt(e.EventVersion) }, dest: func(r *scanRow) any { return &r.eventVersion }},
	{name: "correlation_id", value: func(e *event.Event, _ time.Time) any { return nullUUID(e.CorrelationID) }, dest: func(r *scanRow) any { return &r.correlationID }},
	{name: "causation_id", value: func(e *event.Event, _ time.Time) any { return nullUUID(e.CausationID) }, dest: func(r *scanRow) any { return &r.causationID }},
	{name: "event_data", value: func(e *event.Event, _ time.Time) any { return jsonObject(e.Data) }, dest: func(r *scanRow) any { return &r.data }},
	{name: "event_metadata", value: metadataValue, dest: func(r *scanRow) any { return &r.metadata }},
	{name: "status", value: func(e *event.Event, _ time.Time) any { return nullString(string(e.Status)) }, dest: func(r *scanRow) any { return &r.status }},
	{name: "priority", value: func(e *event.Event, _ time.Time) any { return nullString(string(e.Priority)) }, dest: func(r *scanRow) any { return &r.priority }},
	{name: "scheduled_at", value: func(e *event.Event, _ time.Time) any { return nullTime(e.ScheduledAt) }, dest: func(r *scanRow) any { return &r.scheduledAt }},
	{name: "processing_started_at", value: func(e *event.Event, _ time.Time) any { return nullTime(e.ProcessingStartedAt) }, dest: func(r *scanRow) any { return &r.startedAt }},
	{name: "processing_completed_at", value: func(e *event.Event, _ time.Time) any { return nullTime(e.ProcessingCompletedAt) }, dest: func(r *scanRow) any { return &r.completedAt }},
	{name: "processing_duration_ms", value: func(e *event.Event, _ time.Time) any { return e.ProcessingDurationMS }, dest: func(r *scanRow) any { return &r.durationMS }},
	{name: "retry_count", value: func(e *event.Event, _ time.Time) any { return int32(e.RetryCount) }, dest: func(r *scanRow) any { return &r.retryCount }},
	{name: "max_retries", value: func(e *event.Event, _ time.Time) any { return int32(e.MaxRetries) }, dest: func(r *scanRow) any { return &r.maxRetries }},
	{name: "error_message", value: func(e *event.Event, _ time.Time) any { return nullString(e.ErrorMessage) }, dest: func(r *scanRow) any { return &r.errorMessage }},
	{name: "error_details", value: func(e *event.Event, _ time.Time) any { return jsonObject(e.ErrorDetails) }, dest: func(r *scanRow) any { return &r.errorDetails }},
	{name: "tenant_id", adminOnly: true, value: func(e *event.Event, _ time.Time) any { return nullUUID(e.TenantID) }, dest: func(r *scanRow) any { return &r.tenantID }},
	{name: "organization_id", adminOnly: true, value: func(e *event.Event, _ time.Time) any { return nullUUID(e.OrganizationID) }, dest: func(r *scanRow) any { return &r.organizationID }},
	{name: "user_id", value: func(e *event.Event, _ time.Time) any { return nullUUID(e.UserID) }, dest: func(r *scanRow) any { return &r.userID }},
	{name: "source_service", value: func(e *event.Event, _ time.Time) any { return nullString(e.SourceService) }, dest: func(r *scanRow) any { return &r.sourceService }},
	{name: "source_version", value: func(e *event.Event, _ time.Time) any { return nullString(e.SourceVersion) }, dest: func(r *scanRow) any { return &r.sourceVersion }},
	{name: "queue_name", value: func(e *event.Event, _ time.Time) any { return nullString(e.QueueName) }, dest: func(r *scanRow) any { return &r.queueName }},
	{name: "message_id", value: func(e *event.Event, _ time.Time) any { return nullString(e.MessageID) }, dest: func(r *scanRow) any { return &r.messageID }},
	{name: "partition_key", value: func(e *event.Event, _ time.Time) any { return nullString(e.PartitionKey) }, dest: func(r *scanRow) any { return &r.partitionKey }},
	{name: "created_at", value: func(e *event.Event, now time.Time) any { return timeOr(e.CreatedAt, now) }, dest: func(r *scanRow) any { return &r.createdAt }},
	{name: "updated_at", value: func(e *event.Event, now time.Time) any { return timeOr(e.UpdatedAt, now) }, dest: func(r *scanRow) any { return &r.updatedAt }},
	{name: "deleted_at", value: func(e *event.Event, _ time.Time) any { return nullTime(e.DeletedAt) }, dest: func(r *scanRow) any { return &r.deletedAt }},
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
