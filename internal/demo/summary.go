package demo

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/dlq"
	"github.com/neo-events/neo-events/internal/store"
)

// Progress counts the statuses of a set of published events.
type Progress struct {
	// Published is how many events were asked about.
	Published int
	// ByStatus counts the rows found by status; events without a row are
	// not in it.
	ByStatus map[event.Status]int
}

// Final is how many have a final status: completed or failed.
func (p Progress) Final() int {
	return p.ByStatus[event.StatusCompleted] + p.ByStatus[event.StatusFailed]
}

// Missing is how many have no row at all.
func (p Progress) Missing() int {
	n := p.Published
	for _, c := range p.ByStatus {
		n -= c
	}
	return n
}

// Done reports whether every event is final.
func (p Progress) Done() bool { return p.Final() == p.Published }

// ids returns the events' ids by schema.
func ids(bySchema map[string][]*event.Event) map[string][]uuid.UUID {
	out := make(map[string][]uuid.UUID, len(bySchema))
	for s, evs := range bySchema {
		for _, e := range evs {
			out[s] = append(out[s], e.ID)
		}
	}
	return out
}

// Track counts the statuses of the given events in their schemas.
func Track(ctx context.Context, db store.DB, bySchema map[string][]*event.Event) (Progress, error) {
	p := Progress{ByStatus: map[event.Status]int{}}
	for schema, list := range ids(bySchema) {
		p.Published += len(list)
		if err := event.ValidateSchema(schema); err != nil {
			return p, fmt.Errorf("demo: %w", err)
		}
		rows, err := db.Query(ctx, fmt.Sprintf(`SELECT status::text, count(*) FROM %s.events WHERE id = ANY($1) GROUP BY 1`,
			event.QuoteIdent(schema)), list)
		if err != nil {
			return p, fmt.Errorf("demo: statuses in %s: %w", schema, err)
		}
		var st string
		var n int
		_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error {
			p.ByStatus[event.Status(st)] += n
			return nil
		})
		if err != nil {
			return p, fmt.Errorf("demo: statuses in %s: %w", schema, err)
		}
	}
	return p, nil
}

// NotFinal describes up to limit of the events that are not final, as
// "<schema> <id> (<status>|no row)", for an operator to look up.
func NotFinal(ctx context.Context, db store.DB, bySchema map[string][]*event.Event, limit int) ([]string, error) {
	var out []string
	schemas := sortedKeys(bySchema)
	for _, schema := range schemas {
		if err := event.ValidateSchema(schema); err != nil {
			return out, fmt.Errorf("demo: %w", err)
		}
		list := ids(map[string][]*event.Event{schema: bySchema[schema]})[schema]
		rows, err := db.Query(ctx, fmt.Sprintf(`
SELECT want.id::text, coalesce(e.status::text, 'no row')
  FROM unnest($1::uuid[]) AS want(id) LEFT JOIN %s.events e ON e.id = want.id
 WHERE e.status IS NULL OR e.status NOT IN ('completed', 'failed')
 ORDER BY 1 LIMIT $2`, event.QuoteIdent(schema)), list, limit-len(out))
		if err != nil {
			return out, fmt.Errorf("demo: unfinished events in %s: %w", schema, err)
		}
		var id, st string
		_, err = pgx.ForEachRow(rows, []any{&id, &st}, func() error {
			out = append(out, fmt.Sprintf("%s %s (%s)", schema, id, st))
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("demo: unfinished events in %s: %w", schema, err)
		}
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SchemaStats is what one schema holds.
type SchemaStats struct {
	Schema string
	// Rows counts every row of events; Completed and Failed, by status.
	Rows, Completed, Failed int64
	// Executions counts action_executions rows; Retries those with is_retry.
	Executions, Retries int64
}

// CountSchema reads one schema's totals.
func CountSchema(ctx context.Context, db store.DB, schema string) (SchemaStats, error) {
	s := SchemaStats{Schema: schema}
	if err := event.ValidateSchema(schema); err != nil {
		return s, fmt.Errorf("demo: %w", err)
	}
	q := event.QuoteIdent(schema)
	err := db.QueryRow(ctx, fmt.Sprintf(`
SELECT (SELECT count(*) FROM %[1]s.events),
       (SELECT count(*) FROM %[1]s.events WHERE status = 'completed'),
       (SELECT count(*) FROM %[1]s.events WHERE status = 'failed'),
       (SELECT count(*) FROM %[1]s.action_executions),
       (SELECT count(*) FROM %[1]s.action_executions WHERE is_retry)`, q)).
		Scan(&s.Rows, &s.Completed, &s.Failed, &s.Executions, &s.Retries)
	if err != nil {
		return s, fmt.Errorf("demo: count rows in %s: %w", schema, err)
	}
	return s, nil
}

// CountSchemas reads CountSchema for each schema, in order.
func CountSchemas(ctx context.Context, db store.DB, schemas []string) ([]SchemaStats, error) {
	out := make([]SchemaStats, 0, len(schemas))
	for _, s := range schemas {
		st, err := CountSchema(ctx, db, s)
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
	return out, nil
}

// DLQCount is how many dead letters share a reason and action.
type DLQCount struct {
	Reason dlq.Reason
	// Action is the failed action's name; empty when the failure was not
	// action-specific (an invalid entry).
	Action string
	N      int
}

// CountDLQ reads the group's dead letters and counts them by reason and
// action, most frequent first.
func CountDLQ(ctx context.Context, rdb redis.Cmdable, prefix, group string) (total int, counts []DLQCount, err error) {
	entries, err := dlq.List(ctx, rdb, prefix, group, dlq.Filter{}, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("demo: %w", err)
	}
	by := map[DLQCount]int{}
	for _, e := range entries {
		by[DLQCount{Reason: e.Reason, Action: e.Action}]++
	}
	for k, n := range by {
		k.N = n
		counts = append(counts, k)
	}
	sort.Slice(counts, func(i, j int) bool {
		a, b := counts[i], counts[j]
		if a.N != b.N {
			return a.N > b.N
		}
		if a.Reason != b.Reason {
			return a.Reason < b.Reason
		}
		return a.Action < b.Action
	})
	return len(entries), counts, nil
}

// Errors a run ends with.
var (
	// ErrLost: some published events never became final.
	ErrLost = errors.New("demo: events lost (not final in PostgreSQL)")
	// ErrInvalidSignature: the receiver got a request it could not verify.
	ErrInvalidSignature = errors.New("demo: webhook signature invalid")
)

// UnhealthyActions lists the actions a worker marked unhealthy (its circuit
// breaker opened and has not closed since), as "<schema>/<name>": the usual
// reason events stop making progress.
func UnhealthyActions(ctx context.Context, db store.DB, schemas []string) ([]string, error) {
	var out []string
	for _, schema := range schemas {
		if err := event.ValidateSchema(schema); err != nil {
			return out, fmt.Errorf("demo: %w", err)
		}
		rows, err := db.Query(ctx, fmt.Sprintf(`SELECT name FROM %s.actions WHERE is_healthy = false ORDER BY name`,
			event.QuoteIdent(schema)))
		if err != nil {
			return out, fmt.Errorf("demo: action health in %s: %w", schema, err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return out, fmt.Errorf("demo: action health in %s: %w", schema, err)
		}
		for _, n := range names {
			out = append(out, schema+"/"+n)
		}
	}
	return out, nil
}
