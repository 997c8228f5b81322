package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/neo-events/neo-events/event"
)

// execCopyFields is the field count of one action_executions COPY row.
var execCopyFields = uint16(len(execColumns))

// AppendExecutionsCopy appends xs in PostgreSQL's binary COPY format (header,
// rows, trailer) for the columns execColumns lists, with the values
// InsertExecutions writes: zero values as NULL, nil JSON as '{}' and a zero
// queued_at, created_at or updated_at as now. The executions must have
// passed CheckExecution.
func AppendExecutionsCopy(dst []byte, xs []Execution, now time.Time) []byte {
	w := copyWriter{buf: append(dst, copyHeader...)}
	now = event.Normalize(now)
	for i := range xs {
		w.execution(&xs[i], now)
	}
	return append(w.buf, copyTrailer...)
}

// execution appends x as one row, in execColumns order.
func (w *copyWriter) execution(x *Execution, now time.Time) {
	w.buf = binary.BigEndian.AppendUint16(w.buf, execCopyFields)
	w.uuid(x.ID)
	w.uuid(x.EventID)
	w.uuid(x.ActionID)
	w.text(x.Status) // an enum's binary form is its label
	w.time(timeOr(x.QueuedAt, now))
	w.nullTime(x.StartedAt)
	w.nullTime(x.CompletedAt)
	w.int4Ptr(x.DurationMS)
	w.int4(int32(x.Attempt))
	w.bool(x.IsRetry)
	w.nullUUID(x.ParentExecutionID)
	w.nullText(x.ErrorMessage)
	w.jsonObject(x.ErrorDetails)
	w.nullText(x.ErrorStackTrace)
	w.nullText(x.QueueMessageID)
	w.nullText(x.WorkerID)
	w.int4Ptr(x.MemoryUsageMB)
	w.int4Ptr(x.CPUTimeMS)
	w.jsonObject(x.InputData)
	w.jsonObject(x.OutputData)
	w.jsonObject(x.ExecutionContext)
	w.time(timeOr(x.CreatedAt, now))
	w.time(timeOr(x.UpdatedAt, now))
}

func (w *copyWriter) bool(b bool) {
	w.length(1)
	if b {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// ExecutionsCopy writes new action_executions rows with a binary COPY and
// commits the transaction they are in, in one round trip: one
// simple-protocol message holds the COPY and the COMMIT, followed by the
// COPY data. Compared with the INSERT … SELECT FROM unnest of
// QueueInsertNewExecutionsCounted it costs PostgreSQL less per row (no
// expressions to evaluate) and this process no per-element encoding, and
// its buffer is reused. Rows must all be new: one whose id exists fails the
// COPY with unique_violation (IsExecutionConflict), one whose event has no
// row with foreign_key_violation (IsExecutionOrphan). The zero value is
// ready to use; use one per goroutine.
type ExecutionsCopy struct {
	data []byte
	rd   bytes.Reader
}

// CopyAndCommit writes xs into `<schema>.action_executions` and commits the
// transaction conn is in (status 'T'). On success it returns the statistics
// of the rows written (StatsOf: all of them are new). On error nothing was
// committed, unless the connection broke after the message was sent (then
// the outcome is unknown, as for any COMMIT); when the COPY failed, conn is
// left in the aborted transaction and the caller rolls it back.
func (c *ExecutionsCopy) CopyAndCommit(ctx context.Context, conn *pgconn.PgConn, schema string, xs []Execution) ([]ActionStats, error) {
	table, err := execTable(schema)
	if err != nil {
		return nil, fmt.Errorf("copy executions: %w", err)
	}
	if len(xs) == 0 {
		return nil, fmt.Errorf("copy executions: %w", invalidArg("no executions"))
	}
	if err := checkExecutions(xs); err != nil {
		return nil, fmt.Errorf("copy executions into %s: %w", schema, err)
	}
	if s := conn.TxStatus(); s != 'T' {
		return nil, fmt.Errorf("copy executions: %w", invalidArg("connection is not inside a transaction (status %q)", s))
	}
	c.data = AppendExecutionsCopy(c.data[:0], xs, event.Now())
	c.rd.Reset(c.data)
	tag, err := conn.CopyFrom(ctx, &c.rd, "COPY "+table+" ("+execColumnList+") FROM STDIN BINARY;\nCOMMIT")
	c.rd.Reset(nil)
	if cap(c.data) > maxKeptCopyBuffer {
		c.data = nil
	}
	if err != nil {
		return nil, fmt.Errorf("copy %d executions into %s: %w", len(xs), schema, err)
	}
	if tag.String() == "ROLLBACK" {
		// COMMIT of a transaction that had failed before: nothing was written.
		return nil, fmt.Errorf("copy %d executions into %s: %w", len(xs), schema, pgx.ErrTxCommitRollback)
	}
	return StatsOf(xs), nil
}

// maxKeptCopyBuffer bounds the COPY buffer an ExecutionsCopy keeps between
// calls (a flush of 1000 typical executions takes about 250 KB).
const maxKeptCopyBuffer = 1 << 20
