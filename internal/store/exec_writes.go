package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/neo-events/neo-events/event"
)

// The values of the platform enum `platform_common.action_status`, which
// Execution.Status takes.
const (
	ExecPending   = "pending"
	ExecRunning   = "running"
	ExecCompleted = "completed"
	ExecFailed    = "failed"
	ExecRetrying  = "retrying"
	ExecCancelled = "cancelled"
	ExecTimeout   = "timeout"
	ExecSkipped   = "skipped"
	ExecPaused    = "paused"
	ExecBlocked   = "blocked"
)

// Limits of the varchar columns of `action_executions`.
const (
	MaxQueueMessageIDLen = 100
	MaxWorkerIDLen       = 100
)

// execStatuses maps every action_status to whether an attempt in it counts
// in the action statistics and, if so, as a success.
var execStatuses = map[string]struct{ counts, ok bool }{
	ExecPending: {}, ExecRunning: {}, ExecCancelled: {}, ExecSkipped: {}, ExecPaused: {}, ExecBlocked: {},
	ExecCompleted: {counts: true, ok: true},
	ExecFailed:    {counts: true},
	ExecRetrying:  {counts: true},
	ExecTimeout:   {counts: true},
}

// ValidExecStatus reports whether s is a member of action_status.
func ValidExecStatus(s string) bool {
	_, ok := execStatuses[s]
	return ok
}

// FinishedExecStatus reports whether an attempt in status s counts in the
// action statistics: completed (a success), failed, retrying or timeout (a
// failure). Attempts that never ran to an outcome (pending, running,
// cancelled, skipped, paused, blocked) do not.
func FinishedExecStatus(s string) bool { return execStatuses[s].counts }

// Execution is one row of `<schema>.action_executions`: one attempt of one
// action on one event. Zero values mean NULL (nil JSON means the column
// default '{}', and '{}' reads back as nil), except QueuedAt, CreatedAt and
// UpdatedAt, which default to the time of the insert.
type Execution struct {
	ID       uuid.UUID
	EventID  uuid.UUID
	ActionID uuid.UUID
	Status   string // an action_status value, see ExecCompleted etc.

	QueuedAt    time.Time
	StartedAt   time.Time
	CompletedAt time.Time
	DurationMS  *int32 // execution_duration_ms

	Attempt           int  // attempt_number, 1 for the first attempt
	IsRetry           bool // attempt > 1
	ParentExecutionID uuid.UUID

	ErrorMessage    string
	ErrorDetails    json.RawMessage // a JSON object
	ErrorStackTrace string

	QueueMessageID string // the stream entry id
	WorkerID       string // the consumer that ran the attempt
	MemoryUsageMB  *int32
	CPUTimeMS      *int32

	InputData        json.RawMessage // JSON
	OutputData       json.RawMessage // JSON
	ExecutionContext json.RawMessage // JSON

	CreatedAt time.Time
	UpdatedAt time.Time
}

// ActionStats are increments to one action's counters: Total finished
// attempts, of which Successful and Failed, and the sum of their durations.
type ActionStats struct {
	ActionID      uuid.UUID
	Total         int64
	Successful    int64
	Failed        int64
	SumDurationMS int64
}

// execColumns is the column list of action_executions in the order the
// insert and the scan use.
var execColumns = []string{
	"id", "event_id", "action_id", "status", "queued_at", "started_at", "completed_at",
	"execution_duration_ms", "attempt_number", "is_retry", "parent_execution_id",
	"error_message", "error_details", "error_stack_trace", "queue_message_id", "worker_id",
	"memory_usage_mb", "cpu_time_ms", "input_data", "output_data", "execution_context",
	"created_at", "updated_at",
}

// execColumnList is execColumns as SQL (the INSERT's and the COPY's).
var execColumnList = strings.Join(execColumns, ", ")

// execSQLTypes are the unnest() array types, one per execColumns entry.
// JSON travels as text and enums as text, cast in the SELECT.
var execSQLTypes = []string{
	"uuid", "uuid", "uuid", "text", "timestamptz", "timestamptz", "timestamptz",
	"int4", "int4", "bool", "uuid",
	"text", "text", "text", "text", "text",
	"int4", "int4", "text", "text", "text",
	"timestamptz", "timestamptz",
}

// execExprs turn an unnest column into its table value where that is not
// the column as sent. Plain Go slices travel (pgx encodes them without
// reflection), so NULL is spelled by the zero value of the row's Go field:
// ” text, the zero time, a nil uuid, -1 for counters that are never
// negative. JSON and enums travel as text and are cast.
var execExprs = map[string]string{
	"status":                "t.status::platform_common.action_status",
	"started_at":            "NULLIF(t.started_at, " + zeroTimeSQL + ")",
	"completed_at":          "NULLIF(t.completed_at, " + zeroTimeSQL + ")",
	"execution_duration_ms": "NULLIF(t.execution_duration_ms, -1)",
	"parent_execution_id":   "NULLIF(t.parent_execution_id, '00000000-0000-0000-0000-000000000000')",
	"error_message":         "NULLIF(t.error_message, '')",
	"error_details":         "t.error_details::jsonb",
	"error_stack_trace":     "NULLIF(t.error_stack_trace, '')",
	"queue_message_id":      "NULLIF(t.queue_message_id, '')",
	"worker_id":             "NULLIF(t.worker_id, '')",
	"memory_usage_mb":       "NULLIF(t.memory_usage_mb, -1)",
	"cpu_time_ms":           "NULLIF(t.cpu_time_ms, -1)",
	"input_data":            "t.input_data::jsonb",
	"output_data":           "t.output_data::jsonb",
	"execution_context":     "t.execution_context::jsonb",
}

// zeroTimeSQL is time.Time{} as pgx sends it.
const zeroTimeSQL = "'0001-01-01 00:00:00+00'::timestamptz"

func execTable(schema string) (string, error) {
	if err := event.ValidateSchema(schema); err != nil {
		return "", err
	}
	return event.QuoteIdent(schema) + ".action_executions", nil
}

func actionsTable(schema string) string { return event.QuoteIdent(schema) + ".actions" }

// InsertExecutions writes xs into `<schema>.action_executions` with one
// statement and returns how many rows it inserted. It is idempotent on id:
// an execution already stored is left as it is (never updated), since a
// redelivered entry may submit the same attempt again. The events and
// actions the rows refer to must exist. Every execution is validated first;
// nothing is written if one is malformed.
func InsertExecutions(ctx context.Context, db DB, schema string, xs []Execution) (int64, error) {
	n, _, err := insertExecutions(ctx, db, schema, xs, false)
	return n, err
}

// RecordExecutions is InsertExecutions plus, in the same statement, the
// action statistics of the rows it actually inserted (finished attempts
// only, see FinishedExecStatus): an attempt submitted twice is counted
// once. It returns the rows inserted and the number of actions updated.
// Actions rows are locked in id order so concurrent writers do not deadlock.
func RecordExecutions(ctx context.Context, db DB, schema string, xs []Execution) (inserted, actions int64, err error) {
	return insertExecutions(ctx, db, schema, xs, true)
}

// InsertExecutionsCounted is InsertExecutions returning, instead of
// applying, the statistics of the rows it actually inserted (finished
// attempts only): the caller adds them to `actions` later with
// AddActionStats, outside the transaction that inserts the executions, so
// that concurrent writers do not queue on the actions rows' locks.
func InsertExecutionsCounted(ctx context.Context, db DB, schema string, xs []Execution) ([]ActionStats, error) {
	if len(xs) == 0 {
		_, err := execTable(schema)
		return nil, err
	}
	sql, args, err := execStatement(schema, xs, statsReturned)
	if err != nil {
		return nil, err
	}
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("insert %d executions into %s: %w", len(xs), schema, err)
	}
	return scanCounted(rows, schema, len(xs))
}

// QueueInsertNewExecutionsCounted queues InsertExecutionsCounted on b for
// rows that must all be new: without its ON CONFLICT clause, so a row whose
// id exists fails the statement with unique_violation (IsExecutionConflict),
// and the caller writes the batch again with InsertExecutionsCounted. *stats
// is set when the batch's results are read.
func QueueInsertNewExecutionsCounted(b *pgx.Batch, schema string, xs []Execution, stats *[]ActionStats) error {
	if len(xs) == 0 {
		_, err := execTable(schema)
		return err
	}
	sql, args, err := execStatement(schema, xs, statsReturned|newOnly)
	if err != nil {
		return err
	}
	n := len(xs)
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		st, err := scanCounted(rows, schema, n)
		*stats = st
		return err
	})
	return nil
}

// IsExecutionConflict reports whether err is an action_executions row
// whose id already exists (see QueueInsertNewExecutionsCounted).
func IsExecutionConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.TableName == "action_executions"
}

// IsExecutionOrphan reports whether err is an action_executions row whose
// event has no row (foreign_key_violation on event_id): the event reached a
// stream without its row, which a caller inserts before its executions.
func IsExecutionOrphan(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503" && pgErr.TableName == "action_executions" &&
		(pgErr.ConstraintName == "action_executions_event_id_fkey" || strings.HasPrefix(pgErr.Detail, "Key (event_id)="))
}

func scanCounted(rows pgx.Rows, schema string, n int) ([]ActionStats, error) {
	st, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ActionStats, error) {
		var a ActionStats
		var id [16]byte
		err := r.Scan(&id, &a.Total, &a.Successful, &a.Failed, &a.SumDurationMS)
		a.ActionID = id
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("insert %d executions into %s: %w", n, schema, err)
	}
	return st, nil
}

// execStatement validates xs and builds the insert statement and its arguments.
func execStatement(schema string, xs []Execution, mode int) (string, []any, error) {
	table, err := execTable(schema)
	if err != nil {
		return "", nil, fmt.Errorf("insert executions: %w", err)
	}
	if err := checkExecutions(xs); err != nil {
		return "", nil, fmt.Errorf("insert executions into %s: %w", schema, err)
	}
	args := newExecArgs(len(xs), event.Now())
	for i := range xs {
		args.add(&xs[i])
	}
	return insertExecSQL(table, schema, mode), args.slice(), nil
}

// What insertExecSQL does with the statistics of the inserted rows.
const (
	statsNone     = iota // count the rows only
	statsApplied         // add them to the actions' counters in the same statement
	statsReturned        // return them, one row per action
)

// newOnly, or-ed into a stats mode, leaves out ON CONFLICT (id) DO NOTHING:
// every row must be new, and one whose id exists fails the statement with
// unique_violation. The speculative insertion ON CONFLICT needs costs about
// a sixth of the insert.
const newOnly = 1 << 4

func insertExecutions(ctx context.Context, db DB, schema string, xs []Execution, stats bool) (int64, int64, error) {
	if len(xs) == 0 {
		_, err := execTable(schema)
		return 0, 0, err
	}
	mode := statsNone
	if stats {
		mode = statsApplied
	}
	sql, args, err := execStatement(schema, xs, mode)
	if err != nil {
		return 0, 0, err
	}
	var inserted, updated int64
	if err := db.QueryRow(ctx, sql, args...).Scan(&inserted, &updated); err != nil {
		return 0, 0, fmt.Errorf("insert %d executions into %s: %w", len(xs), schema, err)
	}
	return inserted, updated, nil
}

// insertExecSQL builds the one statement. With stats, the inserted rows feed
// the same counters as AddActionStats.
func insertExecSQL(table, schema string, mode int) string {
	stats := mode &^ newOnly
	var b strings.Builder
	b.WriteString("WITH ins AS (INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (" + execColumnList + ") SELECT ")
	for i, c := range execColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		if e, ok := execExprs[c]; ok {
			b.WriteString(e)
		} else {
			b.WriteString("t." + c)
		}
	}
	b.WriteString(" FROM unnest(")
	for i, typ := range execSQLTypes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d::%s[]", i+1, typ)
	}
	b.WriteString(") AS t(" + execColumnList + ")")
	if mode&newOnly == 0 {
		b.WriteString(" ON CONFLICT (id) DO NOTHING")
	}
	b.WriteString(" RETURNING action_id, status::text AS status,")
	b.WriteString(" coalesce(execution_duration_ms::int8, (extract(epoch FROM completed_at - started_at) * 1000)::int8, 0) AS ms)")
	if stats == statsNone {
		b.WriteString(" SELECT (SELECT count(*) FROM ins), 0::int8")
		return b.String()
	}
	b.WriteString(`, inc AS (SELECT action_id,
	count(*)::int8 AS total,
	(count(*) FILTER (WHERE status = 'completed'))::int8 AS ok,
	(count(*) FILTER (WHERE status <> 'completed'))::int8 AS bad,
	sum(greatest(ms, 0))::int8 AS ms
  FROM ins WHERE status IN ('completed', 'failed', 'retrying', 'timeout') GROUP BY action_id)`)
	if stats == statsReturned {
		b.WriteString(" SELECT action_id, total, ok, bad, ms FROM inc")
		return b.String()
	}
	b.WriteString(statsUpdateSQL(actionsTable(schema)))
	b.WriteString(" SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd)")
	return b.String()
}

// statsUpdateSQL adds the increments of CTE inc (action_id, total, ok, bad,
// ms) to the actions' counters. The average is kept over total_executions:
// new = (old_avg*old_total + ms) / (old_total + total), rounded once per
// batch; the column is an integer, so that rounding is all it loses.
func statsUpdateSQL(actions string) string {
	return `, locked AS MATERIALIZED (SELECT a.id FROM ` + actions + ` a
	WHERE a.id IN (SELECT action_id FROM inc) ORDER BY a.id FOR NO KEY UPDATE),
upd AS (UPDATE ` + actions + ` a SET
	total_executions = coalesce(a.total_executions, 0) + inc.total,
	successful_executions = coalesce(a.successful_executions, 0) + inc.ok,
	failed_executions = coalesce(a.failed_executions, 0) + inc.bad,
	avg_execution_time_ms = CASE WHEN coalesce(a.total_executions, 0) + inc.total = 0 THEN a.avg_execution_time_ms
		ELSE least(round((coalesce(a.avg_execution_time_ms, 0)::numeric * coalesce(a.total_executions, 0) + inc.ms)
			/ (coalesce(a.total_executions, 0) + inc.total)), 2147483647)::int4 END
  FROM inc JOIN locked ON locked.id = inc.action_id
 WHERE a.id = inc.action_id RETURNING a.id)`
}

// AddActionStats adds st to the counters of `<schema>.actions` with one
// statement: total, successful and failed executions, and
// avg_execution_time_ms as a running average over total_executions (see
// statsUpdateSQL). Several entries for one action are summed. Unknown
// action ids are ignored. Use it for outcomes that have no execution row;
// RecordExecutions already counts the rows it inserts.
func AddActionStats(ctx context.Context, db DB, schema string, st []ActionStats) error {
	if err := event.ValidateSchema(schema); err != nil {
		return fmt.Errorf("add action stats: %w", err)
	}
	if len(st) == 0 {
		return nil
	}
	ids := make([][16]byte, len(st))
	total, ok, bad, ms := make([]int64, len(st)), make([]int64, len(st)), make([]int64, len(st)), make([]int64, len(st))
	for i, s := range st {
		if err := checkActionStats(s); err != nil {
			return fmt.Errorf("add action stats to %s: entry %d: %w", schema, i, err)
		}
		ids[i], total[i], ok[i], bad[i], ms[i] = s.ActionID, s.Total, s.Successful, s.Failed, s.SumDurationMS
	}
	sql := `WITH inc AS (SELECT action_id, sum(total)::int8 AS total, sum(ok)::int8 AS ok, sum(bad)::int8 AS bad, sum(ms)::int8 AS ms
  FROM unnest($1::uuid[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS t(action_id, total, ok, bad, ms)
 GROUP BY action_id)` + statsUpdateSQL(actionsTable(schema)) + ` SELECT count(*) FROM upd`
	var n int64
	if err := db.QueryRow(ctx, sql, ids, total, ok, bad, ms).Scan(&n); err != nil {
		return fmt.Errorf("add action stats to %s: %w", schema, err)
	}
	return nil
}

func checkActionStats(s ActionStats) error {
	switch {
	case s.ActionID == uuid.Nil:
		return invalidArg("action id is nil")
	case s.Total < 0 || s.Successful < 0 || s.Failed < 0 || s.SumDurationMS < 0:
		return invalidArg("action %s: negative counter", s.ActionID)
	case s.Successful+s.Failed > s.Total:
		return invalidArg("action %s: successful + failed > total", s.ActionID)
	}
	return nil
}

// StatsOf derives the statistics increments of the finished attempts in xs,
// one entry per action in first-seen order. A duration missing from an
// attempt is taken from its timings when both are set, else counted as 0.
func StatsOf(xs []Execution) []ActionStats {
	var out []ActionStats
	idx := map[uuid.UUID]int{}
	for i := range xs {
		x := &xs[i]
		c, known := execStatuses[x.Status]
		if !known || !c.counts {
			continue
		}
		j, seen := idx[x.ActionID]
		if !seen {
			j = len(out)
			idx[x.ActionID] = j
			out = append(out, ActionStats{ActionID: x.ActionID})
		}
		s := &out[j]
		s.Total++
		if c.ok {
			s.Successful++
		} else {
			s.Failed++
		}
		s.SumDurationMS += execDuration(x)
	}
	return out
}

func execDuration(x *Execution) int64 {
	if x.DurationMS != nil {
		return max(int64(*x.DurationMS), 0)
	}
	if !x.StartedAt.IsZero() && !x.CompletedAt.IsZero() && x.CompletedAt.After(x.StartedAt) {
		return x.CompletedAt.Sub(x.StartedAt).Milliseconds()
	}
	return 0
}

// CheckExecution validates one execution the way InsertExecutions does, so
// a caller can refuse a bad one before queueing it.
func CheckExecution(x *Execution) error {
	switch {
	case x.ID == uuid.Nil:
		return invalidArg("execution id is nil")
	case x.EventID == uuid.Nil:
		return invalidArg("execution %s: event id is nil", x.ID)
	case x.ActionID == uuid.Nil:
		return invalidArg("execution %s: action id is nil", x.ID)
	case !ValidExecStatus(x.Status):
		return invalidArg("execution %s: status %q is not an action_status", x.ID, execTrunc(x.Status))
	case x.Attempt < 1 || x.Attempt > 1<<30:
		return invalidArg("execution %s: attempt_number %d out of range", x.ID, x.Attempt)
	case x.ParentExecutionID == x.ID:
		return invalidArg("execution %s: is its own parent", x.ID)
	}
	if err := checkExecTimes(x); err != nil {
		return err
	}
	return checkExecText(x)
}

func checkExecTimes(x *Execution) error {
	queued := x.QueuedAt
	if !x.StartedAt.IsZero() && !queued.IsZero() && event.Normalize(x.StartedAt).Before(event.Normalize(queued)) {
		return invalidArg("execution %s: started_at before queued_at", x.ID)
	}
	if !x.CompletedAt.IsZero() && !x.StartedAt.IsZero() && event.Normalize(x.CompletedAt).Before(event.Normalize(x.StartedAt)) {
		return invalidArg("execution %s: completed_at before started_at", x.ID)
	}
	for _, p := range []struct {
		name string
		v    *int32
	}{{"execution_duration_ms", x.DurationMS}, {"memory_usage_mb", x.MemoryUsageMB}, {"cpu_time_ms", x.CPUTimeMS}} {
		if p.v != nil && *p.v < 0 {
			return invalidArg("execution %s: %s is negative", x.ID, p.name)
		}
	}
	return nil
}

func checkExecText(x *Execution) error {
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"error_message", x.ErrorMessage, 0},
		{"error_stack_trace", x.ErrorStackTrace, 0},
		{"queue_message_id", x.QueueMessageID, MaxQueueMessageIDLen},
		{"worker_id", x.WorkerID, MaxWorkerIDLen},
	} {
		if !event.StorableText(f.v) {
			return invalidArg("execution %s: %s must be UTF-8 without NUL bytes", x.ID, f.name)
		}
		if f.max > 0 && utf8.RuneCountInString(f.v) > f.max {
			return invalidArg("execution %s: %s is longer than %d characters", x.ID, f.name, f.max)
		}
	}
	for _, f := range []struct {
		name string
		v    json.RawMessage
	}{
		{"error_details", x.ErrorDetails}, {"input_data", x.InputData},
		{"output_data", x.OutputData}, {"execution_context", x.ExecutionContext},
	} {
		if len(f.v) > 0 && (!json.Valid(f.v) || !event.StorableJSON(f.v)) {
			return invalidArg("execution %s: %s is not JSON that jsonb can store", x.ID, f.name)
		}
	}
	return nil
}

func checkExecutions(xs []Execution) error {
	for i := range xs {
		if err := CheckExecution(&xs[i]); err != nil {
			return fmt.Errorf("execution %d: %w", i, err)
		}
	}
	return nil
}

func execTrunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// pgArray is a column parameter in the form pgx encodes with the least
// work: a pgtype.ArrayGetter whose elements are pointers into the slice (an
// interface holds a pointer without allocating, where pgtype.FlatArray boxes
// every element) to pgtype values that implement their codec's valuer
// interface (so no wrapper plan runs per element). T is pgtype.UUID, Text,
// Timestamptz, Int4 or Bool.
type pgArray[T any] []T

func (a pgArray[T]) Dimensions() []pgtype.ArrayDimension {
	if a == nil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(a)), LowerBound: 1}}
}

func (a pgArray[T]) Index(i int) any { return &a[i] }

func (a pgArray[T]) IndexType() any { return new(T) }

// execArgs are the column arrays of one insert, in execColumns order. Every
// element is valid (not NULL): NULL is spelled by a zero value (execExprs).
type execArgs struct {
	now                                      time.Time
	id, eventID, actionID, parent            pgArray[pgtype.UUID]
	status, errMsg, errDetails, stack        pgArray[pgtype.Text]
	queueMsg, worker, input, output, xctx    pgArray[pgtype.Text]
	queued, started, completed, created, upd pgArray[pgtype.Timestamptz]
	duration, attempt, mem, cpu              pgArray[pgtype.Int4]
	retry                                    pgArray[pgtype.Bool]
}

func newExecArgs(n int, now time.Time) *execArgs {
	uuids := func() pgArray[pgtype.UUID] { return make(pgArray[pgtype.UUID], 0, n) }
	strs := func() pgArray[pgtype.Text] { return make(pgArray[pgtype.Text], 0, n) }
	times := func() pgArray[pgtype.Timestamptz] { return make(pgArray[pgtype.Timestamptz], 0, n) }
	ints := func() pgArray[pgtype.Int4] { return make(pgArray[pgtype.Int4], 0, n) }
	return &execArgs{
		now: now,
		id:  uuids(), eventID: uuids(), actionID: uuids(), parent: uuids(),
		status: strs(), errMsg: strs(), errDetails: strs(), stack: strs(),
		queueMsg: strs(), worker: strs(), input: strs(), output: strs(), xctx: strs(),
		queued: times(), started: times(), completed: times(), created: times(), upd: times(),
		duration: ints(), attempt: ints(), mem: ints(), cpu: ints(),
		retry: make(pgArray[pgtype.Bool], 0, n),
	}
}

func (a *execArgs) add(x *Execution) {
	a.id = append(a.id, pgUUID(x.ID))
	a.eventID = append(a.eventID, pgUUID(x.EventID))
	a.actionID = append(a.actionID, pgUUID(x.ActionID))
	a.parent = append(a.parent, pgUUID(x.ParentExecutionID))
	a.status = append(a.status, validText(x.Status))
	a.queued = append(a.queued, validTime(timeOr(x.QueuedAt, a.now)))
	a.started = append(a.started, validTime(execTime(x.StartedAt)))
	a.completed = append(a.completed, validTime(execTime(x.CompletedAt)))
	a.created = append(a.created, validTime(timeOr(x.CreatedAt, a.now)))
	a.upd = append(a.upd, validTime(timeOr(x.UpdatedAt, a.now)))
	a.duration = append(a.duration, validInt4(execInt4(x.DurationMS)))
	a.attempt = append(a.attempt, validInt4(int32(x.Attempt)))
	a.retry = append(a.retry, pgtype.Bool{Bool: x.IsRetry, Valid: true})
	a.errMsg = append(a.errMsg, validText(x.ErrorMessage))
	a.errDetails = append(a.errDetails, validText(execJSON(x.ErrorDetails)))
	a.stack = append(a.stack, validText(x.ErrorStackTrace))
	a.queueMsg = append(a.queueMsg, validText(x.QueueMessageID))
	a.worker = append(a.worker, validText(x.WorkerID))
	a.mem = append(a.mem, validInt4(execInt4(x.MemoryUsageMB)))
	a.cpu = append(a.cpu, validInt4(execInt4(x.CPUTimeMS)))
	a.input = append(a.input, validText(execJSON(x.InputData)))
	a.output = append(a.output, validText(execJSON(x.OutputData)))
	a.xctx = append(a.xctx, validText(execJSON(x.ExecutionContext)))
}

// slice returns the arguments in execColumns order.
func (a *execArgs) slice() []any {
	return []any{
		a.id, a.eventID, a.actionID, a.status, a.queued, a.started, a.completed,
		a.duration, a.attempt, a.retry, a.parent,
		a.errMsg, a.errDetails, a.stack, a.queueMsg, a.worker,
		a.mem, a.cpu, a.input, a.output, a.xctx,
		a.created, a.upd,
	}
}

func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

func validText(s string) pgtype.Text { return pgtype.Text{String: s, Valid: true} }

func validTime(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }

func validInt4(n int32) pgtype.Int4 { return pgtype.Int4{Int32: n, Valid: true} }

// execTime normalizes t; the zero time stays zero and is sent as NULL.
func execTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return event.Normalize(t)
}

// execInt4 spells NULL as -1 (see execExprs).
func execInt4(p *int32) int32 {
	if p == nil {
		return -1
	}
	return *p
}

// execJSON writes nil as '{}', the column default, which an explicit insert
// would otherwise bypass.
func execJSON(b json.RawMessage) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}

// ExecutionsForEvent returns every attempt recorded for the event, ordered
// by action, attempt number and id.
func ExecutionsForEvent(ctx context.Context, db DB, schema string, eventID uuid.UUID) ([]Execution, error) {
	table, err := execTable(schema)
	if err != nil {
		return nil, fmt.Errorf("executions for event: %w", err)
	}
	sql := "SELECT " + execSelectList() + " FROM " + table +
		" WHERE event_id = $1 ORDER BY action_id, attempt_number, id"
	rows, err := db.Query(ctx, sql, eventID)
	if err != nil {
		return nil, fmt.Errorf("executions for event %s in %s: %w", eventID, schema, err)
	}
	xs, err := pgx.CollectRows(rows, scanExecution)
	if err != nil {
		return nil, fmt.Errorf("executions for event %s in %s: %w", eventID, schema, err)
	}
	return xs, nil
}

// CompletedActions returns, for each of eventIDs that has any, the ids of
// the actions with a completed attempt, sorted. A worker uses it to skip
// actions already done when an entry is redelivered or redriven.
func CompletedActions(ctx context.Context, db DB, schema string, eventIDs []uuid.UUID) (map[uuid.UUID][]uuid.UUID, error) {
	table, err := execTable(schema)
	if err != nil {
		return nil, fmt.Errorf("completed actions: %w", err)
	}
	out := map[uuid.UUID][]uuid.UUID{}
	if len(eventIDs) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, "SELECT DISTINCT event_id, action_id FROM "+table+
		" WHERE event_id = ANY($1) AND status = 'completed' ORDER BY event_id, action_id", uuidBytes(eventIDs))
	if err != nil {
		return nil, fmt.Errorf("completed actions in %s: %w", schema, err)
	}
	var ev, act [16]byte
	_, err = pgx.ForEachRow(rows, []any{&ev, &act}, func() error {
		out[ev] = append(out[ev], act)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("completed actions in %s: %w", schema, err)
	}
	return out, nil
}

func execSelectList() string {
	parts := make([]string, len(execColumns))
	for i, c := range execColumns {
		parts[i] = c
		if c == "status" {
			parts[i] = "status::text"
		}
	}
	return strings.Join(parts, ", ")
}

func scanExecution(row pgx.CollectableRow) (Execution, error) {
	var (
		x                                     Execution
		status, errMsg, stack, queueMsg, work pgtype.Text
		queued, started, completed            pgtype.Timestamptz
		created, updated                      pgtype.Timestamptz
		duration, attempt, mem, cpu           pgtype.Int4
		retry                                 pgtype.Bool
		parent                                pgtype.UUID
		errDetails, input, output, xctx       []byte
	)
	err := row.Scan(&x.ID, &x.EventID, &x.ActionID, &status, &queued, &started, &completed,
		&duration, &attempt, &retry, &parent, &errMsg, &errDetails, &stack, &queueMsg, &work,
		&mem, &cpu, &input, &output, &xctx, &created, &updated)
	if err != nil {
		return x, err
	}
	x.Status, x.ErrorMessage, x.ErrorStackTrace = status.String, errMsg.String, stack.String
	x.QueueMessageID, x.WorkerID = queueMsg.String, work.String
	x.QueuedAt, x.StartedAt, x.CompletedAt = timeOf(queued), timeOf(started), timeOf(completed)
	x.CreatedAt, x.UpdatedAt = timeOf(created), timeOf(updated)
	x.DurationMS, x.MemoryUsageMB, x.CPUTimeMS = execInt4Ptr(duration), execInt4Ptr(mem), execInt4Ptr(cpu)
	x.Attempt, x.IsRetry = int(attempt.Int32), retry.Bool
	x.ParentExecutionID = uuidOf(parent)
	x.ErrorDetails, x.InputData = execJSONOrNil(errDetails), execJSONOrNil(input)
	x.OutputData, x.ExecutionContext = execJSONOrNil(output), execJSONOrNil(xctx)
	return x, nil
}

func execInt4Ptr(v pgtype.Int4) *int32 {
	if !v.Valid {
		return nil
	}
	n := v.Int32
	return &n
}

// execJSONOrNil reads NULL and the column default '{}' as nil.
func execJSONOrNil(b []byte) json.RawMessage {
	if len(b) == 0 || isEmptyObject(b) {
		return nil
	}
	return json.RawMessage(b)
}

// MissingEvents returns the ids among ids that have no row in
// `<schema>.events`, in the order given, with one query. The status writer
// uses it to insert rows that producers published with XADD only.
func MissingEvents(ctx context.Context, db DB, schema string, ids []uuid.UUID) ([]uuid.UUID, error) {
	sql, args, err := missingStatement(schema, ids)
	if err != nil || sql == "" {
		return nil, err
	}
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("missing events in %s: %w", schema, err)
	}
	return scanMissing(rows, schema)
}

// QueueMissingEvents queues MissingEvents on b; *missing is set when the
// batch's results are read.
func QueueMissingEvents(b *pgx.Batch, schema string, ids []uuid.UUID, missing *[]uuid.UUID) error {
	sql, args, err := missingStatement(schema, ids)
	if err != nil || sql == "" {
		return err
	}
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		ids, err := scanMissing(rows, schema)
		*missing = ids
		return err
	})
	return nil
}

// missingStatement builds MissingEvents' query ("" when ids is empty).
func missingStatement(schema string, ids []uuid.UUID) (string, []any, error) {
	table, err := eventsTable(schema)
	if err != nil {
		return "", nil, fmt.Errorf("missing events: %w", err)
	}
	if len(ids) == 0 {
		return "", nil, nil
	}
	return "SELECT u.id FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)" +
		" WHERE NOT EXISTS (SELECT 1 FROM " + table + " e WHERE e.id = u.id) ORDER BY u.n", []any{uuidBytes(ids)}, nil
}

func scanMissing(rows pgx.Rows, schema string) ([]uuid.UUID, error) {
	var missing []uuid.UUID
	var id [16]byte
	_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
		missing = append(missing, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("missing events in %s: %w", schema, err)
	}
	return missing, nil
}

// uuidBytes converts ids to the form pgx encodes without reflection.
func uuidBytes(ids []uuid.UUID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
