package status

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
)

// plan is what one flush writes to one schema.
type plan struct {
	schema     string
	ids        []uuid.UUID // every event named, first-seen order
	events     map[uuid.UUID]*eventState
	executions []store.Execution
	stats      []store.ActionStats // given in Update.Stats
	counted    []store.ActionStats // of the executions this flush inserted
	// Memory of queue, kept with the plan in its planBuf: the rounds' rows
	// and each round's UPDATE arrays (in use until the batch is sent).
	roundBuf []store.StatusUpdate
	arrays   []*store.StatusArrays
}

// eventState gathers one event's updates of a flush.
type eventState struct {
	ev *event.Event // the last one given
	// steps are its status changes in order; consecutive changes to the
	// same status are merged, which is what applying them one by one does.
	steps []store.StatusUpdate
	// first is room for the usual single step.
	first [1]store.StatusUpdate
}

// buildPlans groups a batch by schema, keeping the order of each event's
// status changes. Plans are sorted by schema so that every writer locks
// rows (action statistics) across schemas in the same order: two workers
// flushing the same schemas in different orders would deadlock.
//
// The plans are built in buf, which a flusher reuses flush after flush (nil:
// fresh memory); they are valid until buf builds again or is released.
func buildPlans(reqs []*request, buf *planBuf) []*plan {
	if buf == nil {
		buf = new(planBuf)
	}
	buf.release()
	n, nx := 0, 0
	for _, r := range reqs {
		n += len(r.updates)
		for i := range r.updates {
			nx += len(r.updates[i].Executions)
		}
	}
	// Every plan's events come from one array, and a batch usually has one
	// schema, so the first plan is sized for all of it.
	if cap(buf.slab) < n {
		buf.slab = make([]eventState, 0, n)
	}
	slab := buf.slab[:0]
	if buf.bySchema == nil {
		buf.bySchema = map[string]*plan{}
	}
	plans := buf.plans[:0]
	for _, r := range reqs {
		for i := range r.updates {
			u := &r.updates[i]
			p := buf.bySchema[u.Schema]
			if p == nil {
				p = buf.plan(len(plans), u.Schema, n, nx)
				buf.bySchema[u.Schema] = p
				plans = append(plans, p)
			}
			slab = p.add(u, slab)
		}
	}
	buf.slab, buf.plans = slab, plans
	sort.Slice(plans, func(i, j int) bool { return plans[i].schema < plans[j].schema })
	return plans
}

// planBuf is a flusher's memory for its plans. A flush is done with its
// plans (written, their statistics added) before its flusher builds the
// next ones, so the arrays, maps and plans of one flush serve the next:
// they were about a tenth of the bytes a worker allocated per event.
// release drops every reference to events and executions, so a buffer
// keeps memory, never data.
type planBuf struct {
	slab     []eventState
	plans    []*plan // the last build's, in its order
	made     []*plan // every plan made so far, reused in turn
	bySchema map[string]*plan
}

// plan returns the i-th plan of a build, for schema: the first is sized for
// the whole batch (n updates, nx executions), as a batch usually has one
// schema.
func (b *planBuf) plan(i int, schema string, n, nx int) *plan {
	if i == len(b.made) {
		b.made = append(b.made, &plan{})
	}
	p := b.made[i]
	p.schema = schema
	if p.events == nil {
		size := 0
		if i == 0 {
			size = n
		}
		p.events = make(map[uuid.UUID]*eventState, size)
	}
	if i == 0 {
		p.ids = slices.Grow(p.ids[:0], n)
		p.executions = slices.Grow(p.executions[:0], nx)
	}
	return p
}

// keptRows bounds what a planBuf keeps: memory for up to this many events
// (and executions) per array. A larger flush (a burst after PostgreSQL
// stalled, up to MaxBatch) gets fresh arrays that are dropped after it, so
// one burst does not raise the worker's live heap, and with it the heap
// goal, for good.
const keptRows = 256

// release empties the buffer, keeping its memory up to keptRows.
func (b *planBuf) release() {
	b.slab = keep(b.slab)
	for _, p := range b.plans {
		p.ids, p.executions, p.stats = keep(p.ids), keep(p.executions), keep(p.stats)
		p.roundBuf = keep(p.roundBuf)
		if len(p.events) > keptRows {
			p.events = nil // a map does not shrink when cleared
		} else {
			clear(p.events)
		}
		for _, a := range p.arrays {
			a.Release(keptRows)
		}
		p.counted = nil
	}
	clear(b.plans)
	b.plans = b.plans[:0]
	clear(b.bySchema)
}

// keep empties s for reuse, dropping the references of the elements in
// use (those beyond were dropped when they were last used), or drops s
// when it holds more than keptRows.
func keep[T any](s []T) []T {
	if cap(s) > keptRows {
		return nil
	}
	clear(s)
	return s[:0]
}

// add adds u to the plan, taking a new event's state from slab (which
// never grows beyond its capacity, so the states do not move).
func (p *plan) add(u *Update, slab []eventState) []eventState {
	st := p.events[u.Event.ID]
	if st == nil {
		slab = append(slab, eventState{})
		st = &slab[len(slab)-1]
		st.steps = st.first[:0]
		p.events[u.Event.ID] = st
		p.ids = append(p.ids, u.Event.ID)
	}
	st.ev = u.Event
	if u.Status.Status != "" {
		st.addStep(u.Status)
	}
	p.executions = append(p.executions, u.Executions...)
	p.stats = append(p.stats, u.Stats...)
	return slab
}

func (st *eventState) addStep(s store.StatusUpdate) {
	n := len(st.steps)
	if n > 0 && st.steps[n-1].Status == s.Status {
		st.steps[n-1] = merge(st.steps[n-1], s)
		return
	}
	st.steps = append(st.steps, s)
}

// merge is a followed by b, as store.UpdateStatuses applies them: zero
// fields keep the earlier value, retry_count only grows, the first
// message id stays.
func merge(a, b store.StatusUpdate) store.StatusUpdate {
	if b.ProcessingStartedAt.IsZero() {
		b.ProcessingStartedAt = a.ProcessingStartedAt
	}
	if b.ProcessingCompletedAt.IsZero() {
		b.ProcessingCompletedAt = a.ProcessingCompletedAt
	}
	if b.ProcessingDurationMS == nil {
		b.ProcessingDurationMS = a.ProcessingDurationMS
	}
	b.RetryCount = max(a.RetryCount, b.RetryCount)
	if b.ErrorMessage == "" {
		b.ErrorMessage = a.ErrorMessage
	}
	if b.ErrorDetails == nil {
		b.ErrorDetails = a.ErrorDetails
	}
	if a.MessageID != "" {
		b.MessageID = a.MessageID
	}
	return b
}

// apply writes the plan: missing rows, statuses, executions. The
// statistics of the inserted executions are kept in p.counted for the
// writer to add to `actions` outside this transaction.
func (p *plan) apply(ctx context.Context, tx pgx.Tx) error {
	missing, err := store.MissingEvents(ctx, tx, p.schema, p.ids)
	if err != nil {
		return err
	}
	inserted, err := p.insertMissing(ctx, tx, missing)
	if err != nil {
		return err
	}
	if err := p.updateStatuses(ctx, tx, inserted); err != nil {
		return err
	}
	if len(p.executions) > 0 {
		counted, err := store.InsertExecutionsCounted(ctx, tx, p.schema, p.executions)
		if err != nil {
			return err
		}
		p.counted = counted
	}
	return nil
}

// insertMissing inserts the missing rows with their final status and
// returns the ids that need no status update. If a concurrent writer
// inserted some of them first, it returns none: replaying every step on a
// row that already has the final status ends in the same state.
func (p *plan) insertMissing(ctx context.Context, tx pgx.Tx, missing []uuid.UUID) (map[uuid.UUID]bool, error) {
	if len(missing) == 0 {
		return nil, nil
	}
	evs := make([]*event.Event, len(missing))
	for i, id := range missing {
		evs[i] = p.events[id].final()
	}
	n, err := store.UpsertMissing(ctx, tx, p.schema, evs)
	if err != nil {
		return nil, fmt.Errorf("insert %d missing events: %w", len(missing), err)
	}
	if int(n) < len(missing) {
		return nil, nil
	}
	done := make(map[uuid.UUID]bool, len(missing))
	for _, id := range missing {
		done[id] = true
	}
	return done, nil
}

// updateStatuses sends the k-th status change of every event in round k:
// usually one round, more only for events that changed status several
// times in this flush.
func (p *plan) updateStatuses(ctx context.Context, tx pgx.Tx, skip map[uuid.UUID]bool) error {
	round := make([]store.StatusUpdate, 0, len(p.ids))
	for k := 0; ; k++ {
		if round = p.round(round[:0], k, skip); len(round) == 0 {
			return nil
		}
		if err := store.UpdateStatuses(ctx, tx, p.schema, round); err != nil {
			return err
		}
	}
}

// round appends the k-th status change of every event not in skip.
func (p *plan) round(dst []store.StatusUpdate, k int, skip map[uuid.UUID]bool) []store.StatusUpdate {
	for _, id := range p.ids {
		st := p.events[id]
		if !skip[id] && k < len(st.steps) {
			dst = append(dst, st.steps[k])
		}
	}
	return dst
}

// queue puts the plan's statements on b for the pipelined path: every
// status round (*short is set when one updates fewer rows than it names),
// then, unless the flush copies them (withExecutions false), the executions
// (their statistics land in p.counted). It assumes no
// row is missing and every execution is new (no ON CONFLICT); the caller
// rolls back if *short is set, an execution's event has no row, or an
// execution id exists. Only events without a status change (rare: an
// update of executions or statistics alone) are looked up first, into
// *missing, since no UPDATE would notice that their row is missing.
func (p *plan) queue(b *pgx.Batch, short *bool, missing *[]uuid.UUID, withExecutions bool) error {
	var stepless []uuid.UUID
	for _, id := range p.ids {
		if len(p.events[id].steps) == 0 {
			stepless = append(stepless, id)
		}
	}
	if err := store.QueueMissingEvents(b, p.schema, stepless, missing); err != nil {
		return err
	}
	// Sized for the usual single round: growing it step by step was a
	// fifteenth of what a worker allocated with status writes on.
	round, used := slices.Grow(p.roundBuf[:0], len(p.ids)), 0
	defer func() { p.roundBuf = round[:used] }() // for release to clear
	for k := 0; ; k++ {
		if round = p.round(round[:0], k, nil); len(round) == 0 {
			break
		}
		used = max(used, len(round))
		if k == len(p.arrays) {
			p.arrays = append(p.arrays, new(store.StatusArrays))
		}
		// The statement's arguments are built now, so round can be reused;
		// each round's arrays stay as they are until the batch is sent.
		if err := store.QueueUpdateStatuses(b, p.schema, round, short, p.arrays[k]); err != nil {
			return err
		}
	}
	if len(p.executions) == 0 || !withExecutions {
		return nil
	}
	return store.QueueInsertNewExecutionsCounted(b, p.schema, p.executions, &p.counted)
}

// copyPlan picks the plan whose executions the pipelined flush writes with
// a COPY sent together with the COMMIT: the one with the most (usually the
// flush's only schema). -1 when no plan has any.
func copyPlan(plans []*plan) int {
	best := -1
	for i, p := range plans {
		if len(p.executions) > 0 && (best < 0 || len(p.executions) > len(plans[best].executions)) {
			best = i
		}
	}
	return best
}

// final returns a copy of the event as its row should be after this
// flush: the column defaults a producer left out, then every status step.
func (st *eventState) final() *event.Event {
	e := eventDefaults(st.ev)
	for _, s := range st.steps {
		applyStep(e, s)
	}
	return e
}

// eventDefaults copies ev with the defaults the events table would apply.
func eventDefaults(ev *event.Event) *event.Event {
	e := *ev
	fillDefaults(&e)
	return &e
}

// fillDefaults sets the defaults the events table would apply on e, and
// reports whether it set any.
func fillDefaults(e *event.Event) bool {
	set := false
	if e.Status == "" {
		e.Status, set = event.StatusPending, true
	}
	if e.Priority == "" {
		e.Priority, set = event.PriorityNormal, true
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt, set = event.Now(), true
	}
	if e.ScheduledAt.IsZero() {
		e.ScheduledAt, set = e.CreatedAt, true
	}
	if len(e.Data) == 0 {
		e.Data, set = []byte(`{}`), true
	}
	return set
}

func applyStep(e *event.Event, s store.StatusUpdate) {
	e.Status = s.Status
	if !s.ProcessingStartedAt.IsZero() {
		e.ProcessingStartedAt = s.ProcessingStartedAt
	}
	if !s.ProcessingCompletedAt.IsZero() {
		e.ProcessingCompletedAt = s.ProcessingCompletedAt
	}
	if s.ProcessingDurationMS != nil {
		d := *s.ProcessingDurationMS
		e.ProcessingDurationMS = &d
	}
	// As in store.UpdateStatuses: only grows, capped by the table's check.
	e.RetryCount = min(max(e.RetryCount, s.RetryCount), e.MaxRetries)
	if s.ErrorMessage != "" {
		e.ErrorMessage = s.ErrorMessage
	}
	if s.ErrorDetails != nil {
		e.ErrorDetails = s.ErrorDetails
	}
	if e.MessageID == "" {
		e.MessageID = s.MessageID
	}
}
