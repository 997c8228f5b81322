package status

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/store"
)

// flush writes reqs, retrying transient failures until they succeed or the
// writer is aborted, and isolating requests PostgreSQL refuses.
func (w *Writer) flush(reqs []*request, buf *planBuf) {
	bo := w.newBackoff()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		plans, err := w.commitOnce(reqs, buf)
		w.count(err, time.Since(start))
		if err == nil {
			w.stats.add(plans)
			w.finish(reqs, nil)
			return
		}
		if w.ctx.Err() != nil {
			w.finish(reqs, fmt.Errorf("status write: %w: %v", ErrClosed, err))
			return
		}
		if rejected(err) {
			w.isolate(reqs, err, buf)
			return
		}
		pause := bo.NextBackOff()
		w.log.Warn("status flush failed; batch kept, writers blocked, retrying",
			zap.Error(err), zap.Int("attempt", attempt), zap.Int("updates", countUpdates(reqs)),
			zap.Duration("retry_in", pause))
		if !w.sleep(pause) {
			w.finish(reqs, fmt.Errorf("status write: %w: %v", ErrClosed, err))
			return
		}
	}
}

// isolate splits a batch PostgreSQL refused for its data, so the good
// requests are written (in order) and only the bad one fails.
func (w *Writer) isolate(reqs []*request, err error, buf *planBuf) {
	if len(reqs) == 1 {
		w.log.Error("status update rejected by PostgreSQL; its Write fails",
			zap.Error(err), zap.Int("updates", len(reqs[0].updates)))
		w.finish(reqs, fmt.Errorf("status write: %w: %w", ErrRejected, err))
		return
	}
	mid := len(reqs) / 2
	w.flush(reqs[:mid], buf)
	w.flush(reqs[mid:], buf)
}

func (w *Writer) newBackoff() backoff.BackOff {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = min(retryInitial, w.opt.RetryMax)
	bo.MaxInterval = w.opt.RetryMax
	bo.MaxElapsedTime = 0 // never give up: writers' contexts bound the wait
	bo.Reset()
	return bo
}

// sleep pauses for d; false if the writer was aborted meanwhile.
func (w *Writer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.ctx.Done():
		return false
	}
}

func (w *Writer) count(err error, took time.Duration) {
	if w.opt.Metrics == nil {
		return
	}
	w.opt.Metrics.StatusFlushDuration.WithLabelValues(w.opt.Group).Observe(took.Seconds())
	outcome := metrics.OutcomeSuccess
	if err != nil {
		outcome = metrics.OutcomeError
	}
	w.opt.Metrics.StatusWritesTotal.WithLabelValues(w.opt.Group, outcome).Inc()
}

// rejected reports whether err is about the data rather than the
// connection, so that writing the same batch again would fail again.
func rejected(err error) bool {
	if errors.Is(err, store.ErrInvalidArgument) || errors.Is(err, event.ErrInvalid) || errors.Is(err, event.ErrInvalidSchema) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) < 2 {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", // data exception
		"23", // integrity constraint violation (unknown action, check)
		"3F", // invalid schema name (tenant dropped)
		"42": // undefined table or column, syntax
		return true
	}
	return false
}

// commitOnce bounds one attempt, so a connection that hangs (rather than
// fails) is given up and the batch retried on another.
func (w *Writer) commitOnce(reqs []*request, buf *planBuf) ([]*plan, error) {
	ctx, cancel := context.WithTimeout(w.ctx, flushTimeout)
	defer cancel()
	return w.commit(ctx, reqs, buf)
}

// stepwiseFor is how long flushes go step by step after one found events
// whose row is missing or executions already written.
const stepwiseFor = 10 * time.Second

// commit writes the batch in one transaction and returns its plans, which
// hold the statistics to add afterwards: pipelined when no row is missing,
// step by step otherwise (package comment).
func (w *Writer) commit(ctx context.Context, reqs []*request, buf *planBuf) ([]*plan, error) {
	plans := buildPlans(reqs, buf)
	if time.Now().UnixNano() >= w.stepwiseUntil.Load() {
		stepwise, err := w.commitPipelined(ctx, plans)
		if !stepwise {
			return plans, err
		}
		w.stepwiseUntil.Store(time.Now().Add(stepwiseFor).UnixNano())
		plans = buildPlans(reqs, buf) // fresh statistics for the second attempt
	}
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		for _, p := range plans {
			if err := p.apply(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	return plans, err
}

// commitPipelined sends BEGIN and every plan's statements in one round
// trip, and the COMMIT in a second one. The executions of one plan (the
// one with the most, see copyPlan) go in that second message as a binary
// COPY just before the COMMIT (store.ExecutionsCopy): PostgreSQL spends
// less per row on a COPY than on the INSERT from unnest(), and this
// process builds no arrays for it. Other plans' executions are INSERTed in
// the first round trip. It rolls back and reports stepwise
// when some event has no row yet (a status UPDATE found fewer rows than it
// names, or an execution's event_id has no row; the stepwise path inserts
// the row before anything refers to it), or when an execution row exists
// already (a replay after a crash or an ambiguous commit; the stepwise path
// skips it). It does not ask which rows exist first: that query cost an
// index probe per event in every flush, for rows that are almost never
// missing.
func (w *Writer) commitPipelined(ctx context.Context, plans []*plan) (stepwise bool, err error) {
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("acquire connection: %w", err)
	}
	// A connection left inside a transaction (a failed ROLLBACK) is
	// destroyed by Release rather than reused.
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	short := false
	missing := make([][]uuid.UUID, len(plans))
	copied := copyPlan(plans)
	for i, p := range plans {
		if err := p.queue(b, &short, &missing[i], i != copied); err != nil {
			return false, err
		}
	}
	err = conn.SendBatch(ctx, b).Close()
	stepwise = short || store.IsExecutionOrphan(err) || store.IsExecutionConflict(err)
	for _, m := range missing {
		stepwise = stepwise || len(m) > 0
	}
	if err != nil || stepwise {
		// The transaction is open or aborted either way; an error here
		// means the connection is gone, which Release handles.
		_, _ = conn.Exec(ctx, "ROLLBACK")
		if stepwise {
			return true, nil
		}
		return false, fmt.Errorf("pipelined status flush: %w", err)
	}
	if copied >= 0 {
		return w.copyAndCommit(ctx, conn, plans[copied])
	}
	ct, err := conn.Exec(ctx, "COMMIT")
	if err != nil {
		return false, fmt.Errorf("commit status flush: %w", err)
	}
	if ct.String() == "ROLLBACK" {
		// PostgreSQL answers COMMIT of a failed transaction with a
		// rollback, not an error; pgx's Tx.Commit checks for it too.
		return false, fmt.Errorf("commit status flush: %w", pgx.ErrTxCommitRollback)
	}
	w.pipelined.Add(1)
	return false, nil
}

// copies recycles the COPY buffers of pipelined flushes.
var copies = sync.Pool{New: func() any { return new(store.ExecutionsCopy) }}

// copyAndCommit ends a pipelined flush: p's executions as a COPY, then
// COMMIT, in one round trip. An execution whose event has no row or whose
// id exists already rolls the flush back for the stepwise path, as in the
// pipeline.
func (w *Writer) copyAndCommit(ctx context.Context, conn *pgxpool.Conn, p *plan) (stepwise bool, err error) {
	c := copies.Get().(*store.ExecutionsCopy)
	defer copies.Put(c)
	pg := conn.Conn().PgConn()
	counted, err := c.CopyAndCommit(ctx, pg, p.schema, p.executions)
	if err != nil {
		if s := pg.TxStatus(); s == 'T' || s == 'E' {
			// A ROLLBACK that fails leaves the connection in the
			// transaction, and Release then destroys it.
			_, _ = conn.Exec(ctx, "ROLLBACK")
		}
		if store.IsExecutionOrphan(err) || store.IsExecutionConflict(err) {
			return true, nil
		}
		return false, fmt.Errorf("commit status flush: %w", err)
	}
	p.counted = counted
	w.pipelined.Add(1)
	return false, nil
}

func countUpdates(reqs []*request) int {
	n := 0
	for _, r := range reqs {
		n += len(r.updates)
	}
	return n
}
