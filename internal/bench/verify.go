package bench

import (
	"context"
	"fmt"
	"strings"

	"github.com/neo-events/neo-events/event"
)

// pgCounts is what the events and action_executions tables say.
type pgCounts struct {
	rows, completed int64
	// dupes counts completed executions beyond the first per (event,
	// action); pairs the (event, action) pairs with one or more.
	dupes, pairs int64
	e2e          Percentiles
}

// union builds one SELECT over every bench schema's table; the schemas
// are the bench's own, validated again before they reach SQL text.
func (e *env) union(table, sel string) (string, error) {
	parts := make([]string, 0, len(e.schemas))
	for _, s := range e.schemas {
		if err := event.ValidateSchema(s); err != nil {
			return "", err
		}
		parts = append(parts, strings.ReplaceAll(sel, "$T", event.QuoteIdent(s)+"."+table))
	}
	return strings.Join(parts, " UNION ALL "), nil
}

// countEvents counts rows and completed events, and the created → done
// latency of completed events (created_at is the intended send time).
func (e *env) countEvents(ctx context.Context) (pgCounts, error) {
	var c pgCounts
	inner, err := e.union("events", `SELECT status, processing_completed_at, created_at FROM $T`)
	if err != nil {
		return c, err
	}
	var pct []float64
	err = e.pool.QueryRow(ctx, `
SELECT count(*), count(*) FILTER (WHERE status = 'completed'),
       percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM processing_completed_at - created_at) * 1000)
           FILTER (WHERE status = 'completed')
FROM (`+inner+`) ev`).Scan(&c.rows, &c.completed, &pct)
	if err != nil {
		return c, fmt.Errorf("count events: %w", err)
	}
	if len(pct) == 3 {
		c.e2e = Percentiles{P50: pct[0], P95: pct[1], P99: pct[2]}
	}
	return c, nil
}

// countExecutions counts duplicate completed executions and the pairs.
func (e *env) countExecutions(ctx context.Context, c *pgCounts) error {
	inner, err := e.union("action_executions",
		`SELECT count(*) AS n FROM $T WHERE status = 'completed' GROUP BY event_id, action_id`)
	if err != nil {
		return err
	}
	err = e.pool.QueryRow(ctx, `SELECT COALESCE(sum(n - 1), 0)::bigint, count(*) FROM (`+inner+`) x`).
		Scan(&c.dupes, &c.pairs)
	if err != nil {
		return fmt.Errorf("count executions: %w", err)
	}
	return nil
}

// verifyProcessed checks, after a drain with status writes on, that every
// published event is completed with exactly one completed execution per
// action, and that the group has nothing left in Redis.
func (e *env) verifyProcessed(ctx context.Context, res *Result) error {
	c, err := e.countEvents(ctx)
	if err != nil {
		return err
	}
	if err := e.countExecutions(ctx, &c); err != nil {
		return err
	}
	if err := e.verifyBacklog(ctx, res); err != nil {
		return err
	}
	v := &res.Verify
	v.Checked, v.Rows, v.Completed = true, c.rows, c.completed
	v.MissingExecutions = max(c.completed*int64(e.cfg.ActionsPerEvent)-c.pairs, 0)
	res.Lost = max(res.Published-c.completed, 0)
	res.Duplicates = c.dupes
	res.EndToEndLatency = c.e2e
	return nil
}

func (e *env) verifyBacklog(ctx context.Context, res *Result) error {
	b, err := e.backlog(ctx)
	if err != nil {
		return fmt.Errorf("read backlog: %w", err)
	}
	n, err := e.entries(ctx)
	if err != nil {
		return fmt.Errorf("count stream entries: %w", err)
	}
	res.Verify.Backlog, res.Verify.Entries = b, n
	return nil
}
