package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/config"
)

// maxActionName is the width of `actions.name`.
const maxActionName = 255

// managedMetadata marks the rows EnsureConfigActions owns.
var managedMetadata = json.RawMessage(`{"managed_by":"` + ManagedBy + `"}`)

// binding is one compiled `handlers:` entry of the config.
type binding struct {
	name       string // config:<handler>:<match>
	handler    string
	actionType string
	match      string
	pattern    event.Pattern
	config     json.RawMessage
}

// parseBindings compiles the config bindings, logging and skipping the ones
// that cannot be used, and dropping repeats of the same handler and match.
func parseBindings(hcs []config.HandlerConfig, log *zap.Logger) []binding {
	seen := make(map[string]bool)
	var out []binding
	for _, hc := range hcs {
		b, err := compileBinding(hc)
		if err != nil {
			log.Error("skipping config handler binding", zap.String("handler", hc.Handler),
				zap.String("match", hc.Match), zap.Error(err))
			continue
		}
		if seen[b.name] {
			log.Warn("duplicate config handler binding ignored", zap.String("action", b.name))
			continue
		}
		seen[b.name] = true
		out = append(out, b)
	}
	return out
}

func compileBinding(hc config.HandlerConfig) (binding, error) {
	if err := handler.ValidateName(hc.Handler); err != nil {
		return binding{}, err
	}
	p, err := event.ParsePattern(hc.Match)
	if err != nil {
		return binding{}, err
	}
	cfg := json.RawMessage(`{}`)
	if len(hc.Config) > 0 {
		if cfg, err = json.Marshal(hc.Config); err != nil {
			return binding{}, fmt.Errorf("handler config: %w", err)
		}
	}
	b := binding{name: "config:" + hc.Handler + ":" + hc.Match, handler: hc.Handler,
		actionType: "custom", match: hc.Match, pattern: p, config: cfg}
	if hc.Handler == "webhook" {
		b.actionType = "webhook"
	}
	if len(b.name) > maxActionName {
		return binding{}, fmt.Errorf("action name %q is longer than %d characters", b.name, maxActionName)
	}
	return b, nil
}

// EnsureConfigActions upserts, by name, an inactive `actions` row for each
// config binding in schema, marked with metadata managed_by = ManagedBy, so
// that the binding's executions have a row to reference. Match calls it on a
// schema's first load; call it directly to prepare a schema ahead of
// traffic. Rows whose name belongs to an unmanaged action are left alone and
// reported with ErrNameClash.
func (d *Dispatcher) EnsureConfigActions(ctx context.Context, schema string) error {
	cols, err := d.discoverColumns(ctx, schema)
	if err != nil {
		return err
	}
	clashes, err := d.upsertBindings(ctx, schema, cols)
	if err != nil {
		return err
	}
	errs := make([]error, len(clashes))
	for i, c := range clashes {
		errs[i] = c
	}
	return errors.Join(errs...)
}

// ensureConfig is EnsureConfigActions for the load path: a name clash
// disables that binding in that schema (logged) instead of the whole schema.
// It returns the names of the clashing bindings.
func (d *Dispatcher) ensureConfig(ctx context.Context, schema string, cols columns) (map[string]bool, error) {
	clashes, err := d.upsertBindings(ctx, schema, cols)
	if err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(clashes))
	for _, c := range clashes {
		names[c.name] = true
		d.log.Error("config handler binding disabled in schema", zap.String("schema", schema), zap.Error(c))
	}
	return names, nil
}

// clashError reports a binding whose row name is taken by an unmanaged row.
type clashError struct{ schema, name string }

func (e *clashError) Error() string {
	return fmt.Sprintf("%s: %s.actions %q", ErrNameClash, e.schema, e.name)
}

func (e *clashError) Unwrap() error { return ErrNameClash }

func (d *Dispatcher) upsertBindings(ctx context.Context, schema string, cols columns) (clashes []*clashError, err error) {
	if len(d.bindings) == 0 {
		return nil, nil
	}
	if err := event.ValidateSchema(schema); err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	undelete := ""
	if cols.actions["deleted_at"] {
		undelete = ", deleted_at = NULL"
	}
	q := fmt.Sprintf(`INSERT INTO %[1]s.actions AS a
		(name, action_type, handler_class, config, event_patterns, is_active, metadata)
		VALUES ($1, $2, $3, $4, $5, false, $6)
		ON CONFLICT (name) DO UPDATE SET action_type = EXCLUDED.action_type,
			handler_class = EXCLUDED.handler_class, config = EXCLUDED.config,
			event_patterns = EXCLUDED.event_patterns%[2]s
		WHERE a.metadata->>'managed_by' = '%[3]s'
		RETURNING id`, event.QuoteIdent(schema), undelete, ManagedBy)
	for _, b := range d.bindings {
		var id uuid.UUID
		err := d.pool.QueryRow(ctx, q, b.name, b.actionType, b.handler, b.config,
			[]string{b.match}, managedMetadata).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			clashes = append(clashes, &clashError{schema: schema, name: b.name})
			continue
		}
		if err != nil {
			return clashes, fmt.Errorf("dispatch: upsert config action %q in %s: %w", b.name, schema, err)
		}
	}
	return clashes, nil
}

// missingConfigRows reports whether some binding has no managed row (deleted
// by an operator, or never created), which calls for another upsert.
// Bindings known to clash are not missing: retrying them would only log again.
func (d *Dispatcher) missingConfigRows(rows []actionRow, clashed map[string]bool) bool {
	if len(d.bindings) == 0 {
		return false
	}
	have := make(map[string]bool)
	for _, r := range rows {
		if r.managed {
			have[r.name] = true
		}
	}
	for _, b := range d.bindings {
		if !have[b.name] && !clashed[b.name] {
			return true
		}
	}
	return false
}

// configEntries builds the bindings' candidates from their managed rows'
// ids. A binding without a row (a name clash) is left out.
func (d *Dispatcher) configEntries(schema string, managed map[string]uuid.UUID) []entry {
	out := make([]entry, 0, len(d.bindings))
	for _, b := range d.bindings {
		id, ok := managed[b.name]
		if !ok {
			continue
		}
		out = append(out, entry{
			action: Action{
				ID: id, Schema: schema, Name: b.name, Type: b.actionType, HandlerName: b.handler,
				Config: b.config, Timeout: DefaultTimeout, Priority: event.PriorityNormal.Rank(),
				Source: SourceConfig,
			},
			patterns: []event.Pattern{b.pattern},
		})
	}
	return out
}
