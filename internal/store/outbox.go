package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/neo-events/neo-events/event"
)

// OutboxBatch is one publisher batch that was committed to Postgres and not
// yet confirmed on a stream.
type OutboxBatch struct {
	BatchID   uuid.UUID
	Schema    string
	EventIDs  []uuid.UUID
	CreatedAt time.Time
}

// InsertOutbox records a batch in neo_events.outbox. The publisher calls it
// in the transaction of the batch's COPY, so the two commit together.
func InsertOutbox(ctx context.Context, db DB, batchID uuid.UUID, schema string, ids []uuid.UUID) error {
	if err := event.ValidateSchema(schema); err != nil {
		return fmt.Errorf("insert outbox batch: %w", err)
	}
	if batchID == uuid.Nil || len(ids) == 0 {
		return fmt.Errorf("insert outbox batch: %w", invalidArg("need a batch id and at least one event id"))
	}
	_, err := db.Exec(ctx,
		"INSERT INTO neo_events.outbox (batch_id, schema_name, event_ids) VALUES ($1, $2, $3)",
		[16]byte(batchID), schema, uuidBytes(ids))
	if err != nil {
		return fmt.Errorf("insert outbox batch %s: %w", batchID, err)
	}
	return nil
}

// DeleteOutbox removes batches once their entries are on a stream. Unknown
// ids are ignored, so a relay and a publisher may both delete.
func DeleteOutbox(ctx context.Context, db DB, batchIDs []uuid.UUID) error {
	if len(batchIDs) == 0 {
		return nil
	}
	if _, err := db.Exec(ctx, "DELETE FROM neo_events.outbox WHERE batch_id = ANY($1::uuid[])", uuidBytes(batchIDs)); err != nil {
		return fmt.Errorf("delete %d outbox batches: %w", len(batchIDs), err)
	}
	return nil
}

// PendingOutbox returns up to limit batches older than olderThan, oldest
// first. A row whose schema name fails event.ValidateSchema (written by
// something other than the publisher) is left out, so it can never reach SQL.
func PendingOutbox(ctx context.Context, db DB, olderThan time.Duration, limit int) ([]OutboxBatch, error) {
	if limit <= 0 || olderThan < 0 {
		return nil, fmt.Errorf("pending outbox: %w", invalidArg("limit %d and age %s must be positive", limit, olderThan))
	}
	rows, err := db.Query(ctx, `
SELECT batch_id, schema_name, event_ids, created_at
  FROM neo_events.outbox
 WHERE created_at < now() - make_interval(secs => $1)
 ORDER BY created_at, batch_id
 LIMIT $2`, olderThan.Seconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	batches, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxBatch, error) {
		var b OutboxBatch
		err := r.Scan(&b.BatchID, &b.Schema, &b.EventIDs, &b.CreatedAt)
		b.CreatedAt = event.Normalize(b.CreatedAt)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	out := batches[:0]
	for _, b := range batches {
		if event.ValidateSchema(b.Schema) == nil {
			out = append(out, b)
		}
	}
	return out, nil
}
