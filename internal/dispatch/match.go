package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/neo-events/neo-events/event"
)

// ErrNilEvent is returned by Match for a nil event.
var ErrNilEvent = errors.New("dispatch: nil event")

// Match returns the actions ev triggers, sorted by Priority (highest first)
// then Name, one per action id: when an action matches both by its own
// patterns and through subscriptions, the direct match wins, then the
// subscription with the highest priority. The first event of a schema loads
// (and, for config bindings, upserts) its definitions; later calls read
// memory only. An event whose schema is invalid is refused with an error
// wrapping event.ErrInvalidSchema; one whose schema has no tables, with
// ErrSchemaNotFound.
//
// A subscription's conditions replace its action's: the action's own
// conditions guard its own event_patterns only.
func (d *Dispatcher) Match(ctx context.Context, ev *event.Event) ([]Action, error) {
	return d.AppendMatches(ctx, nil, ev)
}

// AppendMatches is Match appending the actions to dst, so that a caller
// with room for the usual few matches allocates nothing. It returns dst
// unchanged (nil if dst was nil) when nothing matches.
func (d *Dispatcher) AppendMatches(ctx context.Context, dst []Action, ev *event.Event) ([]Action, error) {
	if ev == nil {
		return nil, ErrNilEvent
	}
	if err := event.ValidateSchema(ev.Schema); err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	snap, err := d.snapshotFor(ctx, ev.Schema)
	if err != nil {
		return nil, err
	}
	m := matcher{ev: ev}
	out, start := dst, len(dst)
	for i := range snap.entries {
		e := &snap.entries[i]
		if taken(out[start:], e.action.ID) || !m.matches(e) {
			continue
		}
		if out == nil {
			out = make([]Action, 0, 4) // most events match a handful: one allocation
		}
		out = append(out, e.action)
	}
	return out, nil
}

// taken reports whether out already holds id. An event matches a handful of
// actions, so a scan beats a map.
func taken(out []Action, id uuid.UUID) bool {
	for i := range out {
		if out[i].ID == id {
			return true
		}
	}
	return false
}

// matcher evaluates entries against one event, decoding event_data at most
// once and only when some candidate has conditions.
type matcher struct {
	ev      *event.Event
	data    any
	decoded bool
	bad     bool // event_data is not valid JSON: conditions cannot hold
}

func (m *matcher) matches(e *entry) bool {
	if !matchAny(e.patterns, m.ev.EventType) || !m.filtersPass(e) {
		return false
	}
	if len(e.conds) == 0 {
		return true
	}
	if !m.decoded {
		m.decoded = true
		v, err := decodeJSON(m.ev.Data)
		m.data, m.bad = v, err != nil
	}
	return !m.bad && e.conds.match(m.data)
}

func matchAny(ps []event.Pattern, eventType string) bool {
	for _, p := range ps {
		if p.Match(eventType) {
			return true
		}
	}
	return false
}

// filtersPass applies a subscription's filters; a set filter never matches
// an event whose column is NULL.
func (m *matcher) filtersPass(e *entry) bool {
	return idIn(e.tenants, m.ev.TenantID) && idIn(e.orgs, m.ev.OrganizationID) &&
		idIn(e.users, m.ev.UserID) && stringIn(e.sources, m.ev.SourceService)
}

func idIn(allowed []uuid.UUID, id uuid.UUID) bool {
	if allowed == nil {
		return true
	}
	if id == uuid.Nil {
		return false
	}
	for _, a := range allowed {
		if a == id {
			return true
		}
	}
	return false
}

func stringIn(allowed []string, s string) bool {
	if allowed == nil {
		return true
	}
	if s == "" {
		return false
	}
	for _, a := range allowed {
		if a == s {
			return true
		}
	}
	return false
}
