package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/neo-events/neo-events/event"
)

// InsertEvents writes evs into `<schema>.events` with one COPY and returns
// the number of rows written. Every column is written: zero values become
// NULL (nil Data, ErrorDetails and zero Metadata become '{}', the column
// defaults) and a zero CreatedAt or UpdatedAt becomes the time of the call.
// Each event must be valid and belong to schema; nothing is written otherwise.
// A duplicate id fails the whole COPY (use UpsertMissing to skip existing rows).
func InsertEvents(ctx context.Context, db DB, schema string, evs []*event.Event) (int64, error) {
	if _, err := eventsTable(schema); err != nil {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	if err := checkEvents(schema, evs); err != nil {
		return 0, fmt.Errorf("insert events into %s: %w", schema, err)
	}
	return copyEvents(ctx, db, schema, evs)
}

func copyEvents(ctx context.Context, db DB, schema string, evs []*event.Event) (int64, error) {
	cs := columnsFor(schema)
	now := event.Now()
	src := pgx.CopyFromSlice(len(evs), func(i int) ([]any, error) {
		return cs.values(evs[i], now), nil
	})
	n, err := db.CopyFrom(ctx, pgx.Identifier{schema, "events"}, cs.names, src)
	if err != nil {
		return 0, fmt.Errorf("insert %d events into %s: %w", len(evs), schema, err)
	}
	return n, nil
}

// checkEvents validates every event before any byte reaches Postgres, so a
// bad one cannot half-write a batch or smuggle text into SQL.
func checkEvents(schema string, evs []*event.Event) error {
	for i, e := range evs {
		if e == nil {
			return fmt.Errorf("%w: event %d is nil", event.ErrInvalid, i)
		}
		if e.Schema != schema {
			return &event.FieldError{Field: "schema", Reason: fmt.Sprintf("event %s belongs to %q, not %q", e.ID, e.Schema, schema)}
		}
		if err := e.Validate(); err != nil {
			return fmt.Errorf("event %d (%s): %w", i, e.ID, err)
		}
		if _, err := e.Metadata.MarshalJSON(); err != nil {
			return fmt.Errorf("event %d (%s): %w: %v", i, e.ID, event.ErrInvalid, err)
		}
	}
	return nil
}
