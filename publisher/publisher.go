// Package publisher records events in PostgreSQL and puts them on their
// partitioned Redis Streams, losing nothing in between (DESIGN §2–§3).
//
// Publish commits the rows first, then XADDs the entries. Concurrent callers
// are group-committed: while one batch is being written, the next one
// gathers every Publish that arrives, so many small calls become few COPYs
// and pipelined XADDs. Each batch also writes one row to the outbox table
// (neo_events.outbox) in the same transaction and deletes it once the
// entries are on their streams. A batch costs two round trips: one to
// PostgreSQL (store.OutboxWriter sends the transaction as one message) and
// one Redis pipeline. A crash or Redis failure between the commit
// and the XADD leaves that outbox row behind; the relay (Relay, RunRelay)
// re-publishes such batches, so every committed event reaches a stream.
// Consumers tolerate the rare duplicate this causes.
//
//	p, err := publisher.New(pool, rdb, publisher.Options{})
//	...
//	ev, _ := event.New("tenant_acme", "users.created", "user", userID, data)
//	err = p.Publish(ctx, ev.Schema, ev)
package publisher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/streams"
)

// Defaults of Options.
const (
	DefaultPrefix     = "events"
	DefaultPartitions = 8
	DefaultMaxBatch   = 2000
	DefaultFlushers   = 2
	// DefaultParallelCommitMin: see Options.ParallelCommitMin.
	DefaultParallelCommitMin = 64
	DefaultQueue             = 8192
)

// Sentinel errors.
var (
	// ErrClosed is returned by Publish after Close.
	ErrClosed = errors.New("publisher closed")
	// ErrRelayPending means the events are committed in PostgreSQL but did
	// not reach their streams; the outbox relay will put them there. The
	// caller must not publish them again.
	ErrRelayPending = errors.New("events committed; stream write failed, the outbox relay will deliver them")
)

// Options configures a Publisher. The zero value is usable.
type Options struct {
	// Prefix of every stream key. Defaults to "events".
	Prefix string
	// Partitions per (scope, category). Defaults to 8; must equal the
	// workers' streams.partitions.
	Partitions int
	// Notify also sends each event on the `{prefix}:notifications` channel.
	Notify bool
	// MaxBatch caps the events of one group commit. Defaults to 2000.
	MaxBatch int
	// Flushers is how many group-commit loops run, so at most how many
	// batches commit at once; each flusher commits one batch at a time
	// while its previous batch is XADDed. Defaults to 2.
	Flushers int
	// ParallelCommitMin is the smallest batch that may start committing
	// beside a running commit: tiny concurrent COPYs into one table cost
	// PostgreSQL more CPU per row than they gain, so smaller batches wait
	// behind the commit in flight and grow. Above it, a second commit
	// overlaps the first one's WAL flush and round trips, which one commit
	// at a time leaves idle. Defaults to 64 (docs/PERFORMANCE.md: with 256
	// callers, 64 gave 25.8K events/s and p99 16–21 ms at 10K/s offered;
	// 2000/4 = 500, the earlier rule, 19.8K and p99 30–50 ms).
	ParallelCommitMin int
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Registerer receives the publisher metrics; nil means none are exported.
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Flushers <= 0 {
		o.Flushers = DefaultFlushers
	}
	if o.ParallelCommitMin <= 0 {
		o.ParallelCommitMin = DefaultParallelCommitMin
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	return o
}

// Publisher publishes events. It is safe for concurrent use; create one
// per process and Close it on shutdown.
type Publisher struct {
	pool *pgxpool.Pool
	rdb  redis.UniversalClient
	opt  Options
	log  *zap.Logger
	m    *metrics.Publisher

	reqs    chan *request
	stop    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.RWMutex
	closed  bool

	delMu   sync.Mutex
	pending []uuid.UUID // outbox batches fully streamed, to delete

	reg     *registry   // stream keys already in the registry set
	gate    *commitGate // when a flusher may commit
	counted *eventCounters
}

type request struct {
	schema string
	events []*event.Event
	// finished is Done once err is set, by finish. A WaitGroup in the
	// request rather than a channel saves an allocation per Publish call
	// (makechan was 0.10 s of 8.3 s in publish profiles).
	finished sync.WaitGroup
	err      error
}

// New starts a Publisher on the given pool and Redis client.
func New(pool *pgxpool.Pool, rdb redis.UniversalClient, opt Options) (*Publisher, error) {
	if pool == nil || rdb == nil {
		return nil, errors.New("publisher: pool and redis client are required")
	}
	opt = opt.withDefaults()
	p := &Publisher{
		pool: pool,
		rdb:  rdb,
		opt:  opt,
		log:  opt.Logger,
		m:    metrics.NewPublisher(opt.Registerer),
		reqs: make(chan *request, DefaultQueue),
		stop: make(chan struct{}),
		reg:  newRegistry(),
		gate: newCommitGate(min(opt.ParallelCommitMin, opt.MaxBatch)),
	}
	p.counted = &eventCounters{vec: p.m.EventsTotal}
	for i := 0; i < opt.Flushers; i++ {
		p.wg.Add(1)
		go p.flushLoop()
	}
	p.wg.Add(1)
	go p.outboxCleaner()
	return p, nil
}

// Publish records the events in `<schema>.events` and puts each on its
// stream. It fills QueueName, PartitionKey and, once added, MessageID of
// every event. On return without error every event is committed and on its
// stream. An error wrapping ErrRelayPending means committed but not yet on
// a stream (the relay will finish the job); any other error means nothing
// was committed.
func (p *Publisher) Publish(ctx context.Context, schema string, evs ...*event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := event.ValidateSchema(schema); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	for i, e := range evs {
		if e == nil {
			return fmt.Errorf("publish: event %d is nil: %w", i, event.ErrInvalid)
		}
		if e.Schema == "" {
			e.Schema = schema
		}
		if e.Schema != schema {
			return fmt.Errorf("publish: event %s has schema %q, publishing to %q: %w", e.ID, e.Schema, schema, event.ErrInvalid)
		}
		p.prepare(e)
		if err := e.Validate(); err != nil {
			return fmt.Errorf("publish: event %d (%s): %w", i, e.ID, err)
		}
	}
	start := time.Now()
	req := &request{schema: schema, events: evs}
	req.finished.Add(1)

	p.closeMu.RLock()
	if p.closed {
		p.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case p.reqs <- req:
		p.closeMu.RUnlock()
	case <-ctx.Done():
		p.closeMu.RUnlock()
		return fmt.Errorf("publish: %w", ctx.Err())
	}
	// Once queued the batch runs to the end even if ctx ends: the caller
	// must learn whether its events were committed, so wait for the result.
	req.finished.Wait()
	err := req.err
	p.m.PublishDuration.Observe(time.Since(start).Seconds())
	outcome := metrics.OutcomeSuccess
	if err != nil {
		outcome = metrics.OutcomeError
	}
	p.counted.get(schema, outcome).Add(float64(len(evs)))
	return err
}

// eventCounters caches the children of EventsTotal by scope, one cache
// per outcome: WithLabelValues hashes its labels and takes a lock on every
// call, which showed in profiles of one-event Publish calls.
type eventCounters struct {
	vec *prometheus.CounterVec
	by  [2]metrics.CounterCache // success, error
}

func (ec *eventCounters) get(schema, outcome string) prometheus.Counter {
	i := 0
	if outcome != metrics.OutcomeSuccess {
		i = 1
	}
	return ec.by[i].Get(event.ScopeOf(schema), func(scope string) prometheus.Counter {
		return ec.vec.WithLabelValues(scope, outcome)
	})
}

// prepare fills the columns that record where the event goes.
func (p *Publisher) prepare(e *event.Event) {
	route(e, p.opt.Prefix, p.opt.Partitions)
	if e.Status == "" {
		e.Status = event.StatusPending
	}
	if e.Priority == "" {
		e.Priority = event.PriorityNormal
	}
	if e.CreatedAt.IsZero() {
		// Only here: event.New set it already, and reading the clock
		// for every event showed in profiles.
		e.CreatedAt = event.Now()
	}
	if e.UpdatedAt.IsZero() {
		e.UpdatedAt = e.CreatedAt
	}
	if e.ScheduledAt.IsZero() {
		e.ScheduledAt = e.CreatedAt
	}
	if len(e.Data) == 0 {
		e.Data = []byte(`{}`)
	}
}

// Close stops accepting events, finishes the batches in flight, deletes the
// outbox rows of streamed batches and returns. It does not close the pool
// or the Redis client.
func (p *Publisher) Close() error {
	p.closeMu.Lock()
	if p.closed {
		p.closeMu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stop)
	p.closeMu.Unlock()
	p.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.deleteStreamed(ctx)
}

// flusher is one group-commit loop: it commits a batch, hands it to its
// streamer, and gathers and commits the next batch while the streamer
// XADDs the previous one, so PostgreSQL and Redis work at the same time.
type flusher struct {
	p   *Publisher
	w   store.OutboxWriter
	evs []*event.Event
	out chan committedBatch // to this flusher's streamer; unbuffered
}

// committedBatch is a flush whose transactions are done: the schema
// groups that committed and their outbox batch ids.
type committedBatch struct {
	groups []schemaBatch
	ids    []uuid.UUID
	n      int
}

// streamer XADDs the batches its flusher committed, one at a time.
type streamer struct {
	p       *Publisher
	entries entryBatch
	evs     []*event.Event
}

func (p *Publisher) flushLoop() {
	defer p.wg.Done()
	f := &flusher{p: p, out: make(chan committedBatch)}
	s := &streamer{p: p}
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		for b := range f.out {
			s.stream(b)
		}
	}()
	defer func() {
		close(f.out)
		<-streamed
	}()
	for {
		var first *request
		select {
		case first = <-p.reqs:
		case <-p.stop:
			// Drain what was queued before Close.
			for {
				select {
				case r := <-p.reqs:
					f.flush(p.gather(r))
				default:
					return
				}
			}
		}
		f.flush(p.gather(first))
	}
}

// commitGate decides when a flusher may start its commit: at once when no
// other commit is running, so a lone batch never waits; alongside running
// commits only with a batch of at least parallelMin events. Small batches
// thus queue behind the commit in flight and grow (classic group commit;
// concurrent small COPYs cost PostgreSQL more CPU per row than they
// save), while a deep backlog still gets Flushers commits at once.
//
// A flusher that is already waiting goes before one that just arrived:
// otherwise the flusher that has just committed, which never has to sleep
// to come back, took the free turn again and again while the other one's
// callers waited (publish p99 at 10K/s offered was 5 ms of gate wait alone).
type commitGate struct {
	mu          sync.Mutex
	running     int
	waiting     int // flushers that were refused and have not entered yet
	parallelMin int
	changed     chan struct{} // closed and replaced whenever running drops
}

func newCommitGate(parallelMin int) *commitGate {
	return &commitGate{parallelMin: parallelMin, changed: make(chan struct{})}
}

// enter reports whether a batch of n events may commit now (and counts it
// as running); otherwise it returns a channel closed when a commit ends.
// waited says the caller was refused before: a caller that was refused
// must call enter again, with waited true, until it is let in.
func (g *commitGate) enter(n int, waited bool) (bool, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	free := g.running == 0 && (waited || g.waiting == 0)
	if free || n >= g.parallelMin {
		g.running++
		if waited {
			g.waiting--
		}
		return true, nil
	}
	if !waited {
		g.waiting++
	}
	return false, g.changed
}

func (g *commitGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	close(g.changed)
	g.changed = make(chan struct{})
}

// awaitTurn waits until the gate lets reqs commit, taking further
// requests into the batch (up to MaxBatch events) while it waits.
func (p *Publisher) awaitTurn(reqs []*request) []*request {
	n := 0
	for _, r := range reqs {
		n += len(r.events)
	}
	for waited := false; ; waited = true {
		ok, changed := p.gate.enter(n, waited)
		if ok {
			return reqs
		}
		more := p.reqs
		if n >= p.opt.MaxBatch {
			more = nil // full: only wait for the turn
		}
		select {
		case r := <-more:
			reqs = append(reqs, r)
			n += len(r.events)
		case <-changed:
		}
	}
}

// gather takes first plus every request already waiting, up to MaxBatch events.
func (p *Publisher) gather(first *request) []*request {
	batch := []*request{first}
	n := len(first.events)
	for n < p.opt.MaxBatch {
		select {
		case r := <-p.reqs:
			batch = append(batch, r)
			n += len(r.events)
		default:
			return batch
		}
	}
	return batch
}

// schemaBatch is the requests of one schema within a flush: they commit in
// one transaction.
type schemaBatch struct {
	schema string
	reqs   []*request
	n      int
}

// flush commits each schema's requests (rows and outbox row in one
// transaction per schema, one round trip each) and passes what committed
// to the streamer.
func (f *flusher) flush(reqs []*request) {
	p := f.p
	reqs = p.awaitTurn(reqs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	groups := groupBySchema(reqs)
	n := 0
	for _, g := range groups {
		n += g.n
	}
	p.m.BatchSize.Observe(float64(n))

	b := f.commit(ctx, groups)
	p.gate.leave()
	if len(b.groups) > 0 {
		f.out <- b
	}
}

// stream XADDs every event of a committed batch in one pipeline and
// answers its callers.
func (s *streamer) stream(b committedBatch) {
	p := s.p
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.evs = s.evs[:0]
	for _, g := range b.groups {
		for _, r := range g.reqs {
			s.evs = append(s.evs, r.events...)
		}
	}
	_, err := addToStreams(ctx, p.rdb, p.opt.Prefix, p.opt.Notify, s.evs, p.reg, &s.entries)
	clear(s.evs)
	if err != nil {
		p.log.Warn("events committed but not streamed; the outbox relay will deliver them",
			zap.Int("events", b.n), zap.Error(err))
		err = fmt.Errorf("publish: %w: %v", ErrRelayPending, err)
		for _, g := range b.groups {
			finish(g.reqs, err)
		}
		return
	}
	p.delMu.Lock()
	p.pending = append(p.pending, b.ids...)
	p.delMu.Unlock()
	for _, g := range b.groups {
		finish(g.reqs, nil)
	}
}

// groupBySchema splits reqs by schema, in order of first appearance.
func groupBySchema(reqs []*request) []schemaBatch {
	groups := make([]schemaBatch, 0, 1)
	for _, r := range reqs {
		i := 0
		for i < len(groups) && groups[i].schema != r.schema {
			i++
		}
		if i == len(groups) {
			groups = append(groups, schemaBatch{schema: r.schema})
		}
		groups[i].reqs = append(groups[i].reqs, r)
		groups[i].n += len(r.events)
	}
	return groups
}

func finish(reqs []*request, err error) {
	for _, r := range reqs {
		r.err = err
		r.finished.Done()
	}
}

// commit writes each schema's batch with store.OutboxWriter: the rows by
// binary COPY plus one outbox row, in one transaction sent in one round
// trip. The outbox rows of batches already streamed are deleted in the
// first transaction that succeeds, which saves a round trip under load.
// Requests of a schema whose transaction fails are answered here; it
// returns the groups that committed.
func (f *flusher) commit(ctx context.Context, groups []schemaBatch) committedBatch {
	p := f.p
	fail := func(g schemaBatch, err error) {
		finish(g.reqs, fmt.Errorf("publish: commit: %w", err))
	}
	var conn *pgxpool.Conn
	defer func() {
		if conn != nil {
			conn.Release()
		}
	}()
	done := p.takeStreamed()
	var b committedBatch
	for _, g := range groups {
		// A failed batch may have closed the connection; the next
		// schema gets a fresh one.
		if conn != nil && conn.Conn().IsClosed() {
			conn.Release()
			conn = nil
		}
		if conn == nil {
			c, err := p.pool.Acquire(ctx)
			if err != nil {
				fail(g, fmt.Errorf("acquire connection: %w", err))
				continue
			}
			conn = c
		}
		batchID, err := event.NewID()
		if err != nil {
			fail(g, err)
			continue
		}
		f.evs = f.evs[:0]
		for _, r := range g.reqs {
			f.evs = append(f.evs, r.events...)
		}
		_, err = f.w.Commit(ctx, conn.Conn().PgConn(), g.schema, batchID, f.evs, done)
		clear(f.evs)
		if err != nil {
			fail(g, err)
			continue
		}
		done = nil
		b.groups = append(b.groups, g)
		b.ids = append(b.ids, batchID)
		b.n += g.n
	}
	p.requeueStreamed(done)
	return b
}

// route fills PartitionKey (default: the aggregate id) and QueueName (the
// stream key).
func route(e *event.Event, prefix string, partitions int) {
	if e.PartitionKey == "" {
		e.PartitionKey = e.AggregateID.String()
	}
	e.QueueName = streams.Key(prefix, e, partitions)
}

// AddToStreams is the transport half of Publish, without PostgreSQL: it
// routes each event (PartitionKey, QueueName), XADDs them in one pipeline,
// registers their streams and sets MessageID. It is for events whose rows
// are already committed or that have none (producers that only XADD), and
// for measuring the transport alone (publisher-bench redis-only). Events
// are validated first.
func AddToStreams(ctx context.Context, rdb redis.UniversalClient, opt Options, evs ...*event.Event) (int, error) {
	opt = opt.withDefaults()
	for i, e := range evs {
		if e == nil {
			return 0, fmt.Errorf("add to streams: event %d is nil: %w", i, event.ErrInvalid)
		}
		route(e, opt.Prefix, opt.Partitions)
		if err := e.Validate(); err != nil {
			return 0, fmt.Errorf("add to streams: event %d (%s): %w", i, e.ID, err)
		}
	}
	b := entryBatches.Get().(*entryBatch)
	defer entryBatches.Put(b)
	return addToStreams(ctx, rdb, opt.Prefix, opt.Notify, evs, nil, b)
}

// entryBatches keeps AddToStreams' scratch space between calls, as each
// flusher keeps its own: a fresh one cost about 2 KB and 3 allocations per
// event in growing slices. addToStreams resets a batch before it returns.
var entryBatches = sync.Pool{New: func() any { return new(entryBatch) }}

func (p *Publisher) takeStreamed() []uuid.UUID {
	p.delMu.Lock()
	defer p.delMu.Unlock()
	ids := p.pending
	p.pending = nil
	return ids
}

func (p *Publisher) requeueStreamed(ids []uuid.UUID) {
	if len(ids) == 0 {
		return
	}
	p.delMu.Lock()
	p.pending = append(p.pending, ids...)
	p.delMu.Unlock()
}

// outboxCleaner deletes the outbox rows of streamed batches when no new
// batch comes along to do it in its transaction.
func (p *Publisher) outboxCleaner() {
	defer p.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := p.deleteStreamed(ctx); err != nil {
				p.log.Warn("delete outbox rows", zap.Error(err))
			}
			cancel()
		}
	}
}

func (p *Publisher) deleteStreamed(ctx context.Context) error {
	ids := p.takeStreamed()
	if len(ids) == 0 {
		return nil
	}
	if err := store.DeleteOutbox(ctx, p.pool, ids); err != nil {
		p.requeueStreamed(ids)
		return err
	}
	return nil
}
