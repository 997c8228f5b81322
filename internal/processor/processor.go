// Package processor turns one stream entry into its outcome: it decodes
// the event, finds the matching actions, runs each through dispatch,
// decides between done, retry later and dead letter, writes the status to
// PostgreSQL (through the background status writer) and only then, in one
// atomic Redis script, acknowledges the entry, schedules the retries and
// writes the dead letters (DESIGN §3).
//
// Retries are kept in the sorted set `{prefix}:retry:{group}` and completed
// actions of in-flight events in `{prefix}:done:{group}:{event_id}`, so
// neither a retry schedule nor the knowledge of what already ran lives
// only in a worker's memory.
package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/consumer"
	"github.com/neo-events/neo-events/internal/dispatch"
	"github.com/neo-events/neo-events/internal/dlq"
	"github.com/neo-events/neo-events/internal/logging"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/retry"
	"github.com/neo-events/neo-events/internal/status"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/streams"
)

// Dispatcher is what the processor needs of internal/dispatch.
type Dispatcher interface {
	// AppendMatches appends the actions ev triggers to dst (see
	// dispatch.Dispatcher.Match).
	AppendMatches(ctx context.Context, dst []dispatch.Action, ev *event.Event) ([]dispatch.Action, error)
	Run(ctx context.Context, req dispatch.RunRequest) dispatch.Result
}

// StatusWriter is what the processor needs of internal/status.
type StatusWriter interface {
	Write(ctx context.Context, u ...status.Update) error
}

// Options configures a Processor.
type Options struct {
	Prefix   string
	Group    string
	WorkerID string // the consumer name, recorded in action_executions.worker_id
	// Fallback is the retry policy of last resort (config retry.*).
	Fallback retry.Policy
	// RetryLease is how long a claimed retry stays invisible to other
	// workers; use worker.claim_min_idle.
	RetryLease time.Duration
	// RetryPoll is how often due retries are looked for. Defaults to 100ms.
	RetryPoll time.Duration
	Logger    *zap.Logger
	Metrics   *metrics.Worker
}

// Processor implements consumer.Processor.
type Processor struct {
	rdb    redis.UniversalClient
	pool   *pgxpool.Pool // nil when statuses are not written
	d      Dispatcher
	w      StatusWriter // nil when statuses are not written
	opt    Options
	log    *zap.Logger
	m      *metrics.Worker
	e2e    prometheus.Observer // m.EndToEndLatency of the group
	b      *batcher
	stop   chan struct{}
	bwg    sync.WaitGroup
	dlqKey string
	rKey   string

	// Resolved retry policies by the action's raw retry_policy: looked up
	// with m[string(raw)], which Go does without converting (allocating).
	// Every event reads it and it rarely changes, so readers load the map
	// without a lock (a shared RWMutex's reader count bounced between the
	// cores) and a writer replaces it with a copy under policyMu.
	policyMu    sync.Mutex
	policies    atomic.Pointer[map[string][]cachedPolicy]
	policyCount int

	// The counters every successful event and action increment, by event
	// type and by action name: WithLabelValues hashes and validates its
	// three labels on every call.
	eventsOK  metrics.CounterCache
	actionsOK metrics.CounterCache
}

// eventSucceeded counts a successful event of type t.
func (p *Processor) eventSucceeded(t string) {
	p.eventsOK.Get(t, func(t string) prometheus.Counter {
		return p.m.EventsTotal.WithLabelValues(p.opt.Group, t, metrics.OutcomeSuccess)
	}).Inc()
}

// actionSucceeded counts a successful attempt of the action named name.
func (p *Processor) actionSucceeded(name string) {
	p.actionsOK.Get(name, func(name string) prometheus.Counter {
		return p.m.ActionExecutionsTotal.WithLabelValues(p.opt.Group, name, metrics.OutcomeSuccess)
	}).Inc()
}

// cachedPolicy is a resolved policy and the event inputs it depends on.
type cachedPolicy struct {
	maxRetries int
	has        bool
	pol        retry.Policy
}

// New returns a Processor. pool and w may be nil (worker.update_status
// false): then nothing is written to PostgreSQL.
func New(rdb redis.UniversalClient, pool *pgxpool.Pool, d Dispatcher, w StatusWriter, opt Options) *Processor {
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.Metrics == nil {
		opt.Metrics = metrics.NewWorker(nil)
	}
	if opt.RetryPoll <= 0 {
		opt.RetryPoll = 100 * time.Millisecond
	}
	if opt.RetryLease <= 0 {
		opt.RetryLease = time.Minute
	}
	p := &Processor{
		rdb: rdb, pool: pool, d: d, w: w, opt: opt, log: opt.Logger, m: opt.Metrics,
		b:      newBatcher(rdb, 512, opt.Group, opt.Logger),
		stop:   make(chan struct{}),
		dlqKey: streams.DLQ(opt.Prefix, opt.Group),
		rKey:   RetryKey(opt.Prefix, opt.Group),
		e2e:    opt.Metrics.EndToEndLatency.WithLabelValues(opt.Group),
	}
	p.bwg.Add(1)
	go func() { defer p.bwg.Done(); p.b.run(p.stop) }()
	return p
}

// Close stops the Redis batcher after the work in flight has finished.
func (p *Processor) Close() {
	close(p.stop)
	p.bwg.Wait()
}

// job is one event to work on: a fresh delivery or a due retry.
type job struct {
	ev *event.Event
	// The entry's fields: flat pairs as read (a delivery) or fields (a
	// retry item). Only dead letters and retry items need the string map,
	// so a delivery's is built on demand (entryFields).
	pairs       []string
	fields      map[string]string
	stream      string
	entryID     string // the entry to acknowledge; "" for a retry (acked when scheduled)
	redelivered bool
	slot        consumer.Slot     // the delivery's slot, released once its handlers are done
	redrive     []string          // action names a redrive asks to re-run
	needsMarker bool              // record completed actions in the done-marker
	doneKey     string            // the done-marker's key, when needsMarker: built once per event
	recovered   []store.Execution // completed attempts read back from the done-marker
	item        *retryItem
	itemRaw     string

	// where names the event for logs (event_type, schema, stream,
	// entry_id); dispatch adds them to the handler's logger only when
	// something is logged. The job's own logger adds event_id and
	// correlation_id and is built on first use (logger): zap encodes a
	// derived logger's fields at once, and most events log nothing.
	where   [4]zap.Field
	base    *zap.Logger
	logOnce sync.Once
	log     *zap.Logger

	// Room for the usual event (one action, a first delivery), so that it
	// needs no allocations of its own for them.
	actBuf  [1]dispatch.Action
	taskBuf [1]task
	resBuf  [1]result
	ownItem retryItem
	// execBuf holds the usual event's one execution row, and upBuf its
	// status write: the writer copies both, so they are free again once
	// Write returns (an interface call's arguments escape, so a
	// status.Update built in writeStatus's frame was an allocation).
	execBuf [1]store.Execution
	upBuf   [1]status.Update

	// abandoned: a handler of the job was abandoned and may still be
	// running, with where as its logger's fields: the job is not recycled.
	abandoned bool
}

// jobs recycles jobs: at well over a kilobyte each, one per event, they were
// a fifth of what a worker allocated per event (garbage the GC paid for).
var jobs = sync.Pool{New: func() any { return new(job) }}

// newJob returns the job of ev, read from stream at entry id. Give it back
// with releaseJob once its event is done.
func (p *Processor) newJob(ev *event.Event, stream, id string) *job {
	j := jobs.Get().(*job)
	j.ev, j.stream, j.base = ev, stream, p.log
	j.where = [4]zap.Field{zap.String(logging.KeyEventType, ev.EventType), zap.String(logging.KeySchema, ev.Schema),
		zap.String(logging.KeyStream, stream), zap.String(logging.KeyEntryID, id)}
	return j
}

// releaseJob recycles j after run returned: nothing the processor started
// for it still runs (attempts are awaited, done-markers and acknowledgements
// hold their own copies), and what outlives it (the event, the status
// update, loggers) holds no pointer into it. Handlers get the job's where
// fields for their logger (dispatch.RunRequest.LogFields); one that was
// abandoned may still use them, so its job is left to the GC.
func releaseJob(j *job) {
	if j.abandoned {
		return
	}
	*j = job{}
	jobs.Put(j)
}

// logger is the job's logger: where, event_id and correlation_id.
func (j *job) logger() *zap.Logger {
	j.logOnce.Do(func() {
		fields := append(j.where[:len(j.where):len(j.where)], zap.Stringer(logging.KeyEventID, j.ev.ID))
		if j.ev.CorrelationID != uuid.Nil {
			fields = append(fields, zap.Stringer(logging.KeyCorrelationID, j.ev.CorrelationID))
		}
		j.log = j.base.With(fields...)
	})
	return j.log
}

// field returns one field of the entry.
func (j *job) field(k string) (string, bool) {
	if j.fields != nil {
		v, ok := j.fields[k]
		return v, ok
	}
	for i := len(j.pairs) - 2; i >= 0; i -= 2 { // the last of duplicates, as DecodeFields
		if j.pairs[i] == k {
			return j.pairs[i+1], true
		}
	}
	return "", false
}

// entryFields returns the entry's fields as strings, for a dead letter or
// a retry item. Not safe for concurrent use: only conclude and the
// run-level paths (one goroutine) call it.
func (j *job) entryFields() map[string]string {
	if j.fields == nil {
		j.fields = dlq.FieldsFromPairs(j.pairs)
	}
	return j.fields
}

// Process handles one delivery from the consumer.
func (p *Processor) Process(ctx context.Context, d consumer.Delivery) {
	if j := p.deliveryJob(ctx, &d); j != nil {
		p.run(ctx, j)
		releaseJob(j)
	}
}

// deliveryJob decodes a delivery into its job, or dead-letters it as
// invalid and returns nil. (Apart from Process, and from run, so that their
// frames on every event goroutine's stack stay small.)
func (p *Processor) deliveryJob(ctx context.Context, d *consumer.Delivery) *job {
	ev, err := event.DecodeFields(d.Fields)
	if err != nil {
		// The raw fields go to the dead letter as they were.
		p.deadLetterInvalid(ctx, d.Stream, d.ID, d.ID, "", dlq.FieldsFromPairs(d.Fields), err)
		return nil
	}
	ev.QueueName, ev.MessageID = d.Stream, d.ID
	j := p.newJob(ev, d.Stream, d.ID)
	j.pairs, j.entryID, j.redelivered, j.slot = d.Fields, d.ID, d.Redelivered, d.Slot
	names, _ := j.field(dlq.FieldRedriveActions)
	if count, _ := j.field(dlq.FieldRedriveCount); names != "" || count != "" {
		j.redelivered = true
		j.redrive = dlq.SplitActions(names)
		if j.redrive == nil {
			j.redrive = []string{} // a redrive naming no action (nothing action-specific failed): run all
		}
	}
	return j
}

// deadLetterInvalid moves an entry that can never succeed to the DLQ with
// reason invalid, acknowledging ackID (the delivered entry, "" for a
// retry) and removing oldItem (the retry item, "" for a delivery).
func (p *Processor) deadLetterInvalid(ctx context.Context, stream, sourceID, ackID, oldItem string, fields map[string]string, cause error) {
	p.log.Warn("invalid entry dead-lettered", zap.String(logging.KeyStream, stream),
		zap.String(logging.KeyEntryID, sourceID), zap.String(logging.KeyEventID, fields[event.FieldID]), zap.Error(cause))
	letter := dlq.AppendFields(nil, fields, dlq.Letter{
		Reason: dlq.ReasonInvalid, Error: cause.Error(), SourceStream: stream, SourceID: sourceID,
	})
	o := &outcome{group: p.opt.Group, stream: stream, entryID: ackID, oldItem: oldItem, dlqKey: p.dlqKey, retryKey: p.rKey,
		doneKey: DoneKey(p.opt.Prefix, p.opt.Group, uuid.Nil), letters: [][]string{letter}}
	if err := p.apply(ctx, o); err != nil {
		p.log.Error("dead-letter invalid entry failed; it stays pending and will be reclaimed",
			zap.String(logging.KeyEntryID, sourceID), zap.Error(err))
		return
	}
	p.m.DeadLettersTotal.WithLabelValues(p.opt.Group, string(dlq.ReasonInvalid)).Inc()
	p.m.EventsTotal.WithLabelValues(p.opt.Group, eventTypeLabel(fields), metrics.OutcomeInvalid).Inc()
}

// eventTypeLabel keeps the metric's cardinality bounded: an invalid
// entry's type is only used when it is well formed.
func eventTypeLabel(fields map[string]string) string {
	if t := fields[event.FieldEventType]; event.ValidateType(t) == nil {
		return t
	}
	return "invalid"
}

// task is one action attempt to make now.
type task struct {
	action  *dispatch.Action // into the job's matches
	attempt int
	parent  uuid.UUID
}

// run works one job to its outcome.
func (p *Processor) run(ctx context.Context, j *job) {
	actions, err := p.d.AppendMatches(ctx, j.actBuf[:0], j.ev)
	if errors.Is(err, dispatch.ErrSchemaNotFound) {
		p.noSchema(ctx, j, err)
		return
	}
	if err != nil {
		// Usually PostgreSQL is unreachable. Leave the entry pending: it is
		// reclaimed and tried again after worker.claim_min_idle.
		j.logger().Warn("match actions failed; entry left pending for redelivery", zap.Error(err))
		return
	}
	tasks, waiting, err := p.plan(ctx, j, actions)
	if err != nil {
		j.logger().Warn("plan failed; entry left pending for redelivery", zap.Error(err))
		return
	}
	// A done-marker protects completed actions from a re-run when the
	// worker dies before the acknowledgement. It is needed while the status
	// write is pending, while other actions of the event still run, and for
	// events that will wait for a retry. Without status writes, a single
	// first attempt is acknowledged right after it returns: no marker.
	j.needsMarker = p.w != nil || len(tasks) > 1 || j.item != nil || len(waiting) > 0
	if j.needsMarker {
		j.doneKey = DoneKey(p.opt.Prefix, p.opt.Group, j.ev.ID)
	}
	results := p.execute(ctx, j, tasks)
	for i := range results {
		if errors.Is(results[i].Err, dispatch.ErrAbandoned) {
			j.abandoned = true
		}
	}
	if ctx.Err() != nil {
		// Shutting down: what ran is in the done-marker; the rest is
		// released for another worker.
		return
	}
	p.conclude(ctx, j, tasks, results, waiting)
}

// noSchema dead-letters a job whose schema does not exist (or no longer
// does, for a scheduled retry): no retry will make it valid.
func (p *Processor) noSchema(ctx context.Context, j *job, err error) {
	sourceID := j.entryID
	if j.item != nil {
		sourceID = j.item.EntryID
	}
	p.deadLetterInvalid(ctx, j.stream, sourceID, j.entryID, j.itemRaw, j.entryFields(),
		fmt.Errorf("schema %q: %w", j.ev.Schema, err))
}

// plan picks the attempts to make now, and the retries not yet due.
func (p *Processor) plan(ctx context.Context, j *job, actions []dispatch.Action) ([]task, []pendingAction, error) {
	var done map[string]bool
	if j.redelivered || j.item != nil {
		var err error
		if done, j.recovered, err = p.completed(ctx, j.ev); err != nil {
			return nil, nil, err
		}
	}
	tasks := j.taskBuf[:0]
	if j.item != nil {
		tasks, waiting := p.planRetry(j, actions, done, tasks)
		return tasks, waiting, nil
	}
	for i := range actions {
		a := &actions[i]
		if done[a.ID.String()] || (j.redrive != nil && !containsName(j.redrive, a.Name)) {
			continue
		}
		tasks = append(tasks, task{action: a, attempt: 1})
	}
	return tasks, nil, nil
}

// planRetry picks the due attempts of a retry item, and those not yet due.
// It is apart from plan because its map of actions takes a large stack
// frame, which every fresh event would otherwise pay for in stack growth.
func (p *Processor) planRetry(j *job, actions []dispatch.Action, done map[string]bool, tasks []task) ([]task, []pendingAction) {
	byID := make(map[uuid.UUID]*dispatch.Action, len(actions))
	for i := range actions {
		byID[actions[i].ID] = &actions[i]
	}
	var waiting []pendingAction
	now := time.Now().UnixMilli()
	for _, pa := range j.item.Actions {
		if done[pa.ID.String()] {
			continue
		}
		a, ok := byID[pa.ID]
		if !ok {
			j.logger().Warn("action of a scheduled retry no longer matches (deactivated, changed or deleted); dropping its retry",
				zap.String(logging.KeyAction, pa.Name))
			continue
		}
		if pa.Due > now {
			waiting = append(waiting, pa)
			continue
		}
		tasks = append(tasks, task{action: a, attempt: pa.Attempt, parent: pa.Parent})
	}
	return tasks, waiting
}

// completed returns the ids of actions already completed for the event,
// from the done-marker and from PostgreSQL when statuses are written, and
// the execution rows the marker holds (a worker that died before writing
// them left them there; inserting them again is harmless).
func (p *Processor) completed(ctx context.Context, ev *event.Event) (map[string]bool, []store.Execution, error) {
	marked, err := p.rdb.HGetAll(ctx, DoneKey(p.opt.Prefix, p.opt.Group, ev.ID)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("read done-marker: %w", err)
	}
	done := make(map[string]bool, len(marked))
	var recovered []store.Execution
	for id, raw := range marked {
		done[id] = true
		if x, ok := decodeRecord(raw, ev.ID); ok {
			recovered = append(recovered, x)
		}
	}
	if p.pool == nil {
		return done, nil, nil
	}
	m, err := store.CompletedActions(ctx, p.pool, ev.Schema, []uuid.UUID{ev.ID})
	if err != nil {
		return nil, nil, fmt.Errorf("read completed executions: %w", err)
	}
	for _, id := range m[ev.ID] {
		done[id.String()] = true
	}
	return done, recovered, nil
}

// decodeRecord reads an execution row from a done-marker value. JSON null
// in a jsonb field decodes to the bytes "null"; they go back to nil (the
// column default), as the row was before it was encoded.
func decodeRecord(raw string, eventID uuid.UUID) (store.Execution, bool) {
	var x store.Execution
	if json.Unmarshal([]byte(raw), &x) != nil || x.ID == uuid.Nil || x.EventID != eventID {
		return store.Execution{}, false
	}
	for _, f := range []*json.RawMessage{&x.ErrorDetails, &x.InputData, &x.OutputData, &x.ExecutionContext} {
		if string(*f) == "null" {
			*f = nil
		}
	}
	return x, true
}

// result is one attempt's result with its execution id.
type result struct {
	dispatch.Result
	execID uuid.UUID
}

// execute runs the tasks concurrently and records each success in the
// done-marker as soon as it happens.
func (p *Processor) execute(ctx context.Context, j *job, tasks []task) []result {
	results := j.resBuf[:0]
	if len(tasks) > len(j.resBuf) {
		results = make([]result, len(tasks))
	} else {
		results = results[:len(tasks)]
	}
	if len(tasks) == 1 {
		// The usual case runs on the event's own goroutine.
		p.attempt(ctx, j, &tasks[0], &results[0])
		return results
	}
	// The goroutines get pointers, not the slices: a slice they captured
	// would be moved to the heap on every call, the usual one included.
	var wg sync.WaitGroup
	for i := range tasks {
		wg.Add(1)
		go func(t *task, r *result) {
			defer wg.Done()
			p.attempt(ctx, j, t, r)
		}(&tasks[i], &results[i])
	}
	wg.Wait()
	return results
}

// attempt makes one attempt of one action and records a success in the
// done-marker.
func (p *Processor) attempt(ctx context.Context, j *job, t *task, res *result) {
	res.execID = newExecutionID()
	res.Result = p.d.Run(ctx, dispatch.RunRequest{
		Event: j.ev, Action: *t.action, Attempt: t.attempt, ExecutionID: res.execID, Logger: j.base, LogFields: j.where[:],
		MaxAttempts: p.maxAttempts(j, t.action),
	})
	if res.Err == nil && res.Deferred == 0 && !res.UnknownHandler && j.needsMarker {
		p.markCompleted(ctx, j, t, res)
	}
}

// markCompleted records a completed attempt in the event's done-marker.
func (p *Processor) markCompleted(ctx context.Context, j *job, t *task, res *result) {
	// The row is built in the pooled op, not in this frame: store.Execution
	// is large, and this runs deep in the event goroutine's stack.
	o := newMark()
	p.fillExecution(&o.mark.row, j, t, res)
	o.mark.row.Status = store.ExecCompleted
	// Not awaited: the marker is queued before this event's
	// acknowledgement, so it lands first; waiting for it would add a
	// round trip to every event.
	p.b.sendMark(ctx, o, j.doneKey, t.action.ID.String())
}

// maxAttempts is the number of attempts the action's policy allows. Not
// inlined: its frame would sit under every handler call of the event.
//
//go:noinline
func (p *Processor) maxAttempts(j *job, a *dispatch.Action) int {
	return p.policy(j, a).MaxAttempts()
}

// policy resolves an action's retry policy for an event. Results are
// cached: parsing the action's retry_policy JSON for every event cost a
// tenth of the worker's CPU.
func (p *Processor) policy(j *job, a *dispatch.Action) retry.Policy {
	_, has := j.field(event.FieldMaxRetries)
	if m := p.policies.Load(); m != nil {
		for _, c := range (*m)[string(a.RetryPolicy)] {
			if c.maxRetries == j.ev.MaxRetries && c.has == has {
				return c.pol
			}
		}
	}
	pol, err := retry.Resolve(a.RetryPolicy, j.ev.MaxRetries, has, p.opt.Fallback)
	if err != nil {
		j.logger().Warn("action retry_policy is invalid; using the event's max_retries and config defaults",
			zap.String(logging.KeyAction, a.Name), zap.Error(err))
		pol, _ = retry.Resolve(nil, j.ev.MaxRetries, has, p.opt.Fallback)
	}
	p.policyMu.Lock()
	defer p.policyMu.Unlock()
	if p.policyCount < maxCachedPolicies {
		old := p.policies.Load()
		m := make(map[string][]cachedPolicy, p.policyCount+1)
		if old != nil {
			for k, v := range *old {
				m[k] = v
			}
		}
		// A new slice: readers may be walking the old one.
		k := string(a.RetryPolicy)
		m[k] = append(slices.Clip(m[k]), cachedPolicy{maxRetries: j.ev.MaxRetries, has: has, pol: pol})
		p.policies.Store(&m)
		p.policyCount++
	}
	return pol
}

// maxCachedPolicies bounds the cache: distinct policies are few (one per
// action definition and max_retries value).
const maxCachedPolicies = 10000

// conclusion is what conclude learns from an event's attempts.
type conclusion struct {
	next    []pendingAction   // attempts to schedule
	execs   []store.Execution // rows to write with the status (only when statuses are written)
	letters [][]string
	lastErr string
}

// conclude turns the attempts' results into executions, the event status,
// retries and dead letters, writes the status and then applies the rest
// in Redis. The usual case (every attempt succeeded) stays in this
// function; the rest is in helpers, so that the event goroutine's stack
// stays small (growing it copies it, and that showed in profiles).
func (p *Processor) conclude(ctx context.Context, j *job, tasks []task, results []result, waiting []pendingAction) {
	// The handlers are done: the next delivery may start while this one's
	// status is written and its entry acknowledged. Without status writes
	// only the acknowledgement is left, a pipelined round trip: moving
	// slots for it cost more than it saved (worker --update-status=false
	// 5 to 7 % fewer events/s; docs/PERFORMANCE.md, session 5).
	if p.w != nil {
		j.slot.Release(ctx)
	}
	now := time.Now()
	item := j.item
	if item == nil {
		item = &j.ownItem
		*item = retryItem{V: 1, Stream: j.stream, EntryID: j.entryID, StartedAt: now} // Fields: when needed
	}
	c := &conclusion{next: append([]pendingAction(nil), waiting...), execs: j.execBuf[:0]}
	if len(j.recovered) > 0 {
		// Completed attempts a dead worker recorded only in the done-marker.
		c.execs = append(c.execs, j.recovered...)
		for _, x := range j.recovered {
			item.RetryCount = max(item.RetryCount, x.Attempt-1)
		}
	}
	for i := range tasks {
		t, r := &tasks[i], &results[i]
		if r.Deferred > 0 || r.Err != nil || r.UnknownHandler {
			p.settle(j, t, r, item, now, c)
			continue
		}
		item.RetryCount = max(item.RetryCount, t.attempt-1)
		if p.w != nil {
			p.addExecution(c, j, t, r, store.ExecCompleted)
		}
		p.actionSucceeded(t.action.Name)
	}
	if c.lastErr != "" {
		item.LastError = c.lastErr
	}
	final := len(c.next) == 0
	if p.w != nil && !p.writeStatus(ctx, j, item, final, now, c.execs) {
		return
	}
	o := outcome{
		group: p.opt.Group, stream: item.Stream, entryID: j.entryID, dlqKey: p.dlqKey, retryKey: p.rKey,
		oldItem: j.itemRaw, final: final, letters: c.letters, marked: j.needsMarker || j.redelivered,
		eventID: j.ev.ID, correlationID: j.ev.CorrelationID,
	}
	if o.marked || !o.plainAck() {
		o.doneKey = j.doneKey
		if o.doneKey == "" {
			o.doneKey = DoneKey(p.opt.Prefix, p.opt.Group, j.ev.ID)
		}
	}
	if !final && !p.scheduleRetry(j, item, c.next, &o) {
		return
	}
	// A plain acknowledgement is only queued (see batcher): the event counts
	// as finished once its outcome is final, as it is here.
	if err := p.apply(ctx, &o); err != nil {
		j.logger().Warn(msgNotAcked, zap.Error(err))
		return
	}
	if final {
		p.finished(j, item)
	}
}

// addExecution appends the attempt's execution row with status. The row is
// built in place: store.Execution is large, and copies of it in conclude's
// frame made every event goroutine's stack grow.
func (p *Processor) addExecution(c *conclusion, j *job, t *task, r *result, status string) {
	c.execs = append(c.execs, store.Execution{})
	x := &c.execs[len(c.execs)-1]
	p.fillExecution(x, j, t, r)
	x.Status = status
}

// settle handles an attempt that did not succeed: deferred without an
// attempt, failed with a retry to schedule, or failed for good (a dead
// letter).
func (p *Processor) settle(j *job, t *task, r *result, item *retryItem, now time.Time, c *conclusion) {
	log := func() *zap.Logger { // built only when something is logged
		return j.logger().With(zap.String(logging.KeyAction, t.action.Name), zap.Int(logging.KeyAttempt, t.attempt))
	}
	if r.Deferred > 0 {
		c.next = append(c.next, pendingAction{ID: t.action.ID, Name: t.action.Name, Attempt: t.attempt,
			Due: now.Add(r.Deferred).UnixMilli(), Parent: t.parent})
		p.m.ActionExecutionsTotal.WithLabelValues(p.opt.Group, t.action.Name, metrics.OutcomeSkipped).Inc()
		return
	}
	item.RetryCount = max(item.RetryCount, t.attempt-1)
	c.lastErr = errText(r)
	pol := p.policy(j, t.action)
	delay, again := retry.Next(pol, t.attempt, r.Err, rand.Float64())
	if r.UnknownHandler || r.Permanent {
		again = false
	}
	if again {
		if p.w != nil {
			p.addExecution(c, j, t, r, store.ExecRetrying)
		}
		c.next = append(c.next, pendingAction{ID: t.action.ID, Name: t.action.Name, Attempt: t.attempt + 1,
			Due: now.Add(delay).UnixMilli(), Parent: r.execID})
		p.m.ActionExecutionsTotal.WithLabelValues(p.opt.Group, t.action.Name, metrics.OutcomeRetry).Inc()
		p.m.RetriesTotal.WithLabelValues(p.opt.Group, t.action.Name).Inc()
		log().Info("action failed; retry scheduled", zap.Duration("delay", delay), zap.String("error", c.lastErr))
		return
	}
	if p.w != nil {
		p.addExecution(c, j, t, r, store.ExecFailed)
	}
	reason := dlq.ReasonExhausted
	switch {
	case r.UnknownHandler:
		reason = dlq.ReasonUnknownHandler
	case r.Permanent || handler.IsPermanent(r.Err):
		reason = dlq.ReasonPermanent
	}
	if item.Fields == nil {
		item.Fields = j.entryFields()
	}
	c.letters = append(c.letters, dlq.AppendFields(nil, item.Fields, dlq.Letter{
		Reason: reason, Error: c.lastErr, Attempts: t.attempt, Action: t.action.Name,
		SourceStream: item.Stream, SourceID: item.EntryID,
	}))
	item.Failed = true
	p.m.ActionExecutionsTotal.WithLabelValues(p.opt.Group, t.action.Name, metrics.OutcomeDeadLettered).Inc()
	p.m.DeadLettersTotal.WithLabelValues(p.opt.Group, string(reason)).Inc()
	log().Warn("action dead-lettered", zap.String("reason", string(reason)), zap.String("error", c.lastErr))
}

// writeStatus writes the event's status and execution rows; false: not
// written, the entry stays unacknowledged.
func (p *Processor) writeStatus(ctx context.Context, j *job, item *retryItem, final bool, now time.Time, execs []store.Execution) bool {
	j.upBuf[0] = status.Update{Schema: j.ev.Schema, Event: j.ev, Status: p.statusUpdate(j, item, final, now), Executions: execs}
	err := p.w.Write(ctx, j.upBuf[:]...)
	j.upBuf[0] = status.Update{}
	if err != nil {
		j.logger().Warn("status not written; entry left unacknowledged for redelivery", zap.Error(err))
		return false
	}
	return true
}

// scheduleRetry puts the retry item into the outcome; false: it cannot be
// encoded, the entry stays unacknowledged.
func (p *Processor) scheduleRetry(j *job, item *retryItem, next []pendingAction, o *outcome) bool {
	if item.Fields == nil {
		item.Fields = j.entryFields()
	}
	item.Actions = next
	item.Nonce = uuid.NewString()
	raw, err := item.encode()
	if err != nil {
		j.logger().Error("cannot schedule retry; entry left unacknowledged", zap.Error(err))
		return false
	}
	o.newItem, o.newDue = raw, item.due()
	return true
}

func (p *Processor) finished(j *job, item *retryItem) {
	if item.Failed {
		p.m.EventsTotal.WithLabelValues(p.opt.Group, j.ev.EventType, metrics.OutcomeFailed).Inc()
	} else {
		p.eventSucceeded(j.ev.EventType)
	}
	if !j.ev.CreatedAt.IsZero() {
		p.e2e.Observe(time.Since(j.ev.CreatedAt).Seconds())
	}
}

// fillExecution writes the attempt's execution row into x (in place: the
// row is large, and returning it by value copied it through the frames).
func (p *Processor) fillExecution(x *store.Execution, j *job, t *task, r *result) {
	started, finished := r.Started, r.Finished
	if started.IsZero() {
		started = time.Now()
	}
	if finished.IsZero() || finished.Before(started) {
		finished = started
	}
	d := int32(finished.Sub(started).Milliseconds())
	*x = store.Execution{
		ID: r.execID, EventID: j.ev.ID, ActionID: t.action.ID,
		QueuedAt: started, StartedAt: started, CompletedAt: finished, DurationMS: &d,
		Attempt: t.attempt, IsRetry: t.attempt > 1, ParentExecutionID: t.parent,
		QueueMessageID: j.ev.MessageID, WorkerID: p.opt.WorkerID,
		OutputData: r.Output, ErrorStackTrace: r.Stack,
	}
	if r.Err != nil || r.UnknownHandler {
		x.ErrorMessage = errText(r)
	}
	if j.redrive != nil {
		x.ExecutionContext = json.RawMessage(`{"redrive":true}`)
	}
}

func (p *Processor) statusUpdate(j *job, item *retryItem, final bool, now time.Time) store.StatusUpdate {
	up := store.StatusUpdate{
		ID: j.ev.ID, Status: event.StatusRetrying, ProcessingStartedAt: event.Normalize(item.StartedAt),
		RetryCount: item.RetryCount, MessageID: item.EntryID,
	}
	if item.LastError != "" {
		up.ErrorMessage = item.LastError
	}
	if final {
		up.Status = event.StatusCompleted
		if item.Failed {
			up.Status = event.StatusFailed
		}
		up.ProcessingCompletedAt = event.Normalize(now)
		d := int32(max(0, now.Sub(item.StartedAt).Milliseconds()))
		up.ProcessingDurationMS = &d
	}
	return up
}

// apply runs the finalize script through the batcher, by SHA so the
// script's text is not sent with every event. After a Redis restart the
// script cache is empty: then it is sent once in full, which reloads it.
// A plain acknowledgement is queued, not waited for: its error is only that
// ctx ended before it was queued.
func (p *Processor) apply(ctx context.Context, o *outcome) error {
	if o.plainAck() {
		// The common outcome: every action done at the first delivery.
		// A plain XACK, merged with the other events of the pipeline.
		a := ackOp{stream: o.stream, id: o.entryID, eventID: o.eventID, correlationID: o.correlationID}
		if o.marked {
			a.doneKey = o.doneKey
		}
		return p.b.ack(ctx, a)
	}
	keys, args := o.args()
	err := p.b.do(ctx, func(pipe redis.Pipeliner) { finalize.EvalSha(ctx, pipe, keys, args...) })
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
		err = finalize.Eval(ctx, p.rdb, keys, args...).Err()
	}
	return err
}

func errText(r *result) string {
	switch {
	case r.UnknownHandler && r.Err == nil:
		return "no handler registered for this action"
	case r.Err != nil:
		return r.Err.Error()
	}
	return ""
}

// containsName reports whether a redrive's action list covers n; an empty
// list covers every action.
func containsName(names []string, n string) bool {
	return len(names) == 0 || slices.Contains(names, n)
}

// RunRetries takes due retries from the retry set and runs them through
// dispatch under the consumer's concurrency bound, until readCtx ends.
func (p *Processor) RunRetries(readCtx, workCtx context.Context, c *consumer.Consumer) {
	t := time.NewTicker(p.opt.RetryPoll)
	defer t.Stop()
	for {
		select {
		case <-readCtx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		members, err := claimDue.Run(readCtx, p.rdb, []string{p.rKey},
			now.UnixMilli(), now.Add(p.opt.RetryLease).UnixMilli(), 256).StringSlice()
		if err != nil {
			if readCtx.Err() == nil {
				p.log.Warn("claim due retries", zap.Error(err))
			}
			continue
		}
		for _, raw := range members {
			raw := raw
			if !c.Dispatch(readCtx, workCtx, func(ctx context.Context) { p.runRetry(ctx, raw) }) {
				return
			}
		}
	}
}

func (p *Processor) runRetry(ctx context.Context, raw string) {
	item, err := decodeRetryItem(raw)
	if err != nil {
		p.log.Error("unreadable retry item removed", zap.Error(err))
		_ = p.rdb.ZRem(ctx, p.rKey, raw).Err()
		return
	}
	ev, err := event.DecodeEntry(item.Fields)
	if err != nil {
		p.log.Error("retry item holds an invalid event; removed", zap.Error(err))
		_ = p.rdb.ZRem(ctx, p.rKey, raw).Err()
		return
	}
	ev.QueueName, ev.MessageID = item.Stream, item.EntryID
	j := p.newJob(ev, item.Stream, item.EntryID)
	j.fields, j.item, j.itemRaw = item.Fields, item, raw
	p.run(ctx, j)
	releaseJob(j)
}
