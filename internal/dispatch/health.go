package dispatch

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/neo-events/neo-events/event"
)

// pgHealth writes breaker transitions to `<schema>.actions`.
type pgHealth struct{ pool *pgxpool.Pool }

// NewPGHealth returns a HealthRecorder that sets is_healthy,
// health_check_error (NULL when healthy) and last_health_check_at on the
// action's row.
func NewPGHealth(pool *pgxpool.Pool) HealthRecorder { return pgHealth{pool: pool} }

func (h pgHealth) SetHealth(ctx context.Context, schema string, actionID uuid.UUID, healthy bool, errText string) error {
	if err := event.ValidateSchema(schema); err != nil {
		return fmt.Errorf("set action health: %w", err)
	}
	var errArg *string
	if !healthy {
		errArg = &errText
	}
	q := `UPDATE ` + event.QuoteIdent(schema) + `.actions
		SET is_healthy = $2, health_check_error = $3, last_health_check_at = now() WHERE id = $1`
	if _, err := h.pool.Exec(ctx, q, actionID, healthy, errArg); err != nil {
		return fmt.Errorf("set health of action %s in %s: %w", actionID, schema, err)
	}
	return nil
}
