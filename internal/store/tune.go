package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/neo-events/neo-events/event"
)

// TunedFillfactor leaves room on every heap page of `events` so that a
// status update can write the new row version on the same page. A worker
// updates the rows of a whole flush in one statement, and rows published
// together share pages, so a page needs room for a new version of most of
// its rows at once (each one larger: the processing columns and message id
// get filled): with 80, 39 % of the e2e bench's updates were HOT; with 50,
// 100 % (docs/PERFORMANCE.md, session 3).
const TunedFillfactor = 50

// Tune is the optional throughput tuning of `eventsctl migrate --tune`
// (docs/PERFORMANCE.md, finding 3). A worker updates every event's status
// once or twice. While `status` is in an index (the platform's
// (status, priority) index, and the partial index on pending events whose
// predicate reads status), PostgreSQL cannot make those updates HOT: each one
// writes a new entry into every index of the table. Tune drops the indexes
// of `events` that read `status` (by catalog lookup, so the platform's own
// index names need not be known) and sets fillfactor to TunedFillfactor, in
// admin, tenant_template and every tenant schema.
//
// What it costs: queries filtering events by status no longer have an index
// (operators listing failed or pending events scan by created_at or type);
// a freshly written events heap is up to twice as large (after the status
// updates, about 20 % larger than an untuned one, whose non-HOT updates
// leave their old versions behind too). What it buys: status updates about 1.9×
// faster in our measurement, and far less WAL. Tenants created afterwards
// inherit it from tenant_template (CreateTenant copies the fillfactor).
// Tune is idempotent and returns what it changed.
func Tune(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	schemas, err := ListSchemas(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	var template bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('tenant_template.events') IS NOT NULL").Scan(&template); err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	if template {
		schemas = append(schemas, event.TemplateSchema)
	}
	var changed []string
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, s := range schemas {
			c, err := tuneSchema(ctx, tx, s)
			if err != nil {
				return fmt.Errorf("tune %s: %w", s, err)
			}
			changed = append(changed, c...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return changed, nil
}

// statusIndexesSQL lists the indexes of <schema>.events, other than the
// primary key, whose columns, expressions or predicate read `status`.
const statusIndexesSQL = `
SELECT i.relname
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = $1 AND t.relname = 'events' AND NOT x.indisprimary
   AND (EXISTS (SELECT 1 FROM pg_attribute a
                 WHERE a.attrelid = t.oid AND a.attname = 'status' AND a.attnum = ANY (x.indkey))
        OR pg_get_expr(x.indpred, x.indrelid) ~ '\mstatus\M'
        OR pg_get_expr(x.indexprs, x.indrelid) ~ '\mstatus\M')
 ORDER BY i.relname`

func tuneSchema(ctx context.Context, tx pgx.Tx, schema string) ([]string, error) {
	if schema != event.TemplateSchema {
		if err := event.ValidateSchema(schema); err != nil {
			return nil, err
		}
	}
	rows, err := tx.Query(ctx, statusIndexesSQL, schema)
	if err != nil {
		return nil, err
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	q := event.QuoteIdent(schema)
	var changed []string
	for _, idx := range indexes {
		if _, err := tx.Exec(ctx, "DROP INDEX "+q+"."+event.QuoteIdent(idx)); err != nil {
			return nil, err
		}
		changed = append(changed, fmt.Sprintf("dropped index %s.%s", schema, idx))
	}
	ff, err := fillfactor(ctx, tx, schema)
	if err != nil {
		return nil, err
	}
	if ff != TunedFillfactor {
		if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.events SET (fillfactor = %d)", q, TunedFillfactor)); err != nil {
			return nil, err
		}
		changed = append(changed, fmt.Sprintf("set fillfactor %d on %s.events", TunedFillfactor, schema))
	}
	return changed, nil
}

// fillfactor returns the fillfactor of <schema>.events, 0 when unset.
func fillfactor(ctx context.Context, db DB, schema string) (int, error) {
	var ff int
	err := db.QueryRow(ctx, `
SELECT coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 0)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = 'events'`, schema).Scan(&ff)
	return ff, err
}
