// Package status is the worker's background writer of processing records to
// PostgreSQL (DESIGN §3): event statuses and timings, one action_executions
// row per attempt, and the actions' statistics.
//
// Write blocks until its updates are committed, so the consumer acknowledges
// a stream entry only once its status is durable. Concurrent writers are
// group-committed: one flusher goroutine takes everything queued (up to
// Options.MaxBatch updates, lingering Options.MaxWait for more) and writes it
// in one transaction with one statement per kind and schema:
//
//  1. store.MissingEvents finds events whose row is missing (producers that
//     only XADD); store.UpsertMissing inserts them from Update.Event with
//     their final status, so the record is always complete.
//  2. store.UpdateStatuses moves the other events' statuses. The updates of
//     one event keep their order: when an event has several status changes
//     in one flush, each further change is one more UpdateStatuses round, so
//     every step is checked by event.Status.CanTransition as if written alone.
//  3. store.InsertExecutionsCounted inserts the attempts (idempotent on id)
//     and returns the statistics of the attempts it inserted, so a
//     redelivered attempt is never counted twice.
//
// Usually no row is missing and every execution is new, and the flush takes
// two round trips: BEGIN and the statements of step 2 are sent in one
// pipeline (pgx.Batch), then the executions as a binary COPY together with
// the COMMIT in one message (store.ExecutionsCopy; a flush spanning schemas
// INSERTs the other schemas' executions in the pipeline, without ON
// CONFLICT, which saves a sixth of their insert). Step 1 is skipped there: a missing
// row shows as an UPDATE that changed fewer rows than it names, or as an
// execution whose event_id has no row (only events without a status change
// are looked up). Then, or if an execution row existed
// (a replay after a crash), that transaction is rolled back and the flush
// is written step by step as above (and so are the flushes of the next
// stepwiseFor: such producers keep publishing that way, and replays come in
// bursts). Each round trip is a wake-up of the PostgreSQL backend and of
// this process; on a busy machine each costs milliseconds, and every event
// of the flush waits for all of them.
//
// The statistics (and Update.Stats) are summed in memory and added to the
// `actions` rows every Options.StatsInterval by store.AddActionStats, outside
// the status transactions: in them, the lock on each action's row would make
// every worker's flush wait for the others'. A crash loses at most one
// interval of statistics, never a status or an execution row.
//
// Options.Flushers flushes run at once (one commits while the next gathers),
// but a batch smaller than Options.ParallelMin waits for the running flush
// instead of starting a transaction of its own beside it.
// The updates of one Write are committed together; Writes that run at the
// same time may commit in any order, so a caller that needs two updates of
// one event in order waits for the first Write before the second (the
// worker does: it writes an event's status once per processing pass).
//
// If PostgreSQL is unreachable the flush is retried with exponential backoff
// (capped at Options.RetryMax) for as long as it takes; writers stay blocked
// until their own context ends, and then must not acknowledge. Nothing is
// dropped: an update is either committed, or its Write returns an error. An
// update PostgreSQL refuses for its data (a constraint, say an unknown
// action) would otherwise block every flush forever, so a flush failing
// that way is split until the offending Write is alone, and that Write
// alone fails with ErrRejected.
package status

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/store"
)

// Defaults of Options.
const (
	DefaultMaxBatch = 1000
	DefaultMaxWait  = 5 * time.Millisecond
	DefaultRetryMax = 5 * time.Second
	DefaultFlushers = 2
	// DefaultParallelMin: see Options.ParallelMin.
	DefaultParallelMin = 64
	// retryInitial is the first pause after a failed flush.
	retryInitial = 50 * time.Millisecond
	// flushTimeout bounds one attempt at writing a batch.
	flushTimeout = 30 * time.Second
)

// Sentinel errors; callers branch on them with errors.Is.
var (
	// ErrClosed: Write after Close, or Close gave up before the update was written.
	ErrClosed = errors.New("status writer closed")
	// ErrInvalidUpdate: Write was given a malformed update; nothing was queued.
	ErrInvalidUpdate = errors.New("invalid status update")
	// ErrRejected: PostgreSQL refused the update for its data (for example
	// an execution naming an unknown action); retrying cannot help.
	ErrRejected = errors.New("status update rejected by PostgreSQL")
)

// Update is what a worker records about one event: its new status, the
// attempts it made, and optionally extra action statistics.
type Update struct {
	// Schema holds the event: "admin" or "tenant_<slug>".
	Schema string
	// Event is the decoded event. Required: the row is inserted from it
	// when it is missing. Write keeps the pointer (it copies the event
	// only to fill in a default), so the event must not be changed once
	// given, even by a caller that stopped waiting.
	Event *event.Event
	// Status is the event's new status (ID empty or Event.ID). A zero
	// Status.Status means "no status change"; its other fields must then be
	// zero too.
	Status store.StatusUpdate
	// Executions are attempts to insert (EventID = Event.ID). The actions'
	// statistics are derived from them (finished attempts, counted once):
	// do not repeat them in Stats.
	Executions []store.Execution
	// Stats are further increments, for outcomes that have no execution
	// row. Usually nil.
	Stats []store.ActionStats
}

// Options configures a Writer. The zero value is usable.
type Options struct {
	// MaxBatch caps the updates of one flush. Defaults to 1000.
	MaxBatch int
	// MaxWait is how long the flusher lingers after the first queued update
	// for others to join its batch. Defaults to 5ms; negative means none.
	MaxWait time.Duration
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Metrics receives StatusWritesTotal, StatusQueueLength and
	// StatusFlushDuration; nil means none.
	Metrics *metrics.Worker
	// Group is the metrics' group label.
	Group string
	// RetryMax caps the backoff between failed flushes. Defaults to 5s.
	RetryMax time.Duration
	// Flushers is how many flushes may run at once. Defaults to 2.
	Flushers int
	// ParallelMin is the smallest batch that may start flushing while
	// another flush runs; a smaller one waits for it, and grows meanwhile,
	// for at most holdFactor × MaxWait after its oldest update was queued
	// (50 ms by default; no hold without MaxWait): a flush may wait long
	// for a row lock held elsewhere, and events should not wait with it.
	// Every flush is a transaction whose commit, round trips and statement
	// set-up cost PostgreSQL about the same whatever its size, so at
	// moderate rates two flushes of a few dozen events each cost more than
	// they gain (docs/PERFORMANCE.md, session 10). Under load the queue
	// holds more and flushes overlap as before. Defaults to 64; negative
	// means no minimum.
	ParallelMin int
	// StatsInterval is how often action statistics are written. Defaults to 1s.
	StatsInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxWait == 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.Flushers <= 0 {
		o.Flushers = DefaultFlushers
	}
	if o.ParallelMin == 0 {
		o.ParallelMin = DefaultParallelMin
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = DefaultStatsInterval
	}
	return o
}

// Writer writes status updates in the background. It is safe for
// concurrent use; create one per process and Close it on shutdown.
type Writer struct {
	pool *pgxpool.Pool
	opt  Options
	log  *zap.Logger

	// ctx bounds all I/O; Close cancels it when its own context ends.
	ctx   context.Context
	abort context.CancelFunc

	mu      sync.Mutex
	queue   []*request
	pending int // updates queued or in flight, for the queue-length gauge
	// flushing is how many flushes are running (see Options.ParallelMin).
	flushing int
	// queueLen is the gauge's child for Options.Group, looked up once:
	// WithLabelValues hashes and locks, and the gauge is set twice per Write.
	queueLen prometheus.Gauge
	closed   bool

	wake chan struct{} // a request was queued, or a flush ended
	stop chan struct{} // closed by Close
	done chan struct{} // closed when every flusher has exited

	stats     statsBuffer
	statsDone chan struct{} // closed after the last statistics write

	// stepwiseUntil (unix nanoseconds) is until when flushes skip the
	// pipelined path: its last attempt found events whose row is missing.
	stepwiseUntil atomic.Int64
	// pipelined counts flushes committed on the pipelined path (tests).
	pipelined atomic.Int64
}

// request is one Write call; its updates succeed or fail together.
type request struct {
	updates  []Update
	queuedAt time.Time
	done     chan error

	// Room for the usual Write (one update) and the copies of the
	// executions, kept when the request is recycled.
	one   [1]Update
	execs []store.Execution
}

// requests recycles requests (with their done channel and buffers): a
// Write that received its result gives its request back. One whose writer
// stopped waiting may still be in a flush and is left to the GC.
var requests = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

// maxKeptExecs bounds the executions buffer a recycled request keeps.
const maxKeptExecs = 64

// release recycles r; nothing may use it afterwards. Its done channel must
// be empty.
func (r *request) release() {
	clear(r.one[:])
	clear(r.execs)
	r.execs = r.execs[:0]
	if cap(r.execs) > maxKeptExecs {
		r.execs = nil
	}
	r.updates, r.queuedAt = nil, time.Time{}
	requests.Put(r)
}

// New starts a Writer on pool. It does not close the pool.
func New(pool *pgxpool.Pool, opt Options) *Writer {
	opt = opt.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		pool: pool, opt: opt, log: opt.Logger,
		ctx: ctx, abort: cancel,
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		statsDone: make(chan struct{}),
	}
	if opt.Metrics != nil {
		w.queueLen = opt.Metrics.StatusQueueLength.WithLabelValues(opt.Group)
	}
	var flushers sync.WaitGroup
	for i := 0; i < opt.Flushers; i++ {
		flushers.Add(1)
		go func() { defer flushers.Done(); w.run() }()
	}
	go func() { flushers.Wait(); close(w.done) }()
	go w.statsLoop()
	go func() { <-w.statsDone; w.abort() }()
	return w
}

// Write queues the updates and blocks until they are committed, in order
// relative to each other and to earlier Writes. A nil error means they are
// durable. Any error means the caller must not acknowledge the entry: an
// error wrapping ErrInvalidUpdate or ErrRejected will never succeed; an
// error wrapping ctx's error means Write stopped waiting (the updates may
// still be written later, which is harmless since every write is idempotent);
// ErrClosed means the writer is shutting down.
func (w *Writer) Write(ctx context.Context, us ...Update) error {
	if len(us) == 0 {
		return nil
	}
	if w.pool == nil {
		return fmt.Errorf("status write: %w: no database pool", ErrClosed)
	}
	req, err := newRequest(us)
	if err != nil {
		return fmt.Errorf("status write: %w", err)
	}
	if err := ctx.Err(); err != nil {
		req.release()
		return fmt.Errorf("status write: %w", err)
	}
	if err := w.enqueue(req); err != nil {
		req.release()
		return err
	}
	select {
	case err := <-req.done:
		req.release()
		return err
	case <-ctx.Done():
		w.withdraw(req)
		return fmt.Errorf("status write: not confirmed durable: %w", ctx.Err())
	}
}

func (w *Writer) enqueue(req *request) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	req.queuedAt = time.Now()
	w.queue = append(w.queue, req)
	w.pending += len(req.updates)
	w.gauge()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// withdraw takes a request its writer gave up on out of the queue, so a
// long outage does not pile up updates nobody waits for. A request the
// flusher already holds stays in its batch.
func (w *Writer) withdraw(req *request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, r := range w.queue {
		if r == req {
			w.queue = append(w.queue[:i], w.queue[i+1:]...)
			w.pending -= len(req.updates)
			w.gauge()
			return
		}
	}
}

// gauge publishes the queue length; w.mu must be held.
func (w *Writer) gauge() {
	if w.queueLen != nil {
		w.queueLen.Set(float64(w.pending))
	}
}

// Close stops accepting updates, writes everything queued and returns. If
// ctx ends first (say PostgreSQL is still down), it stops retrying, fails
// the remaining Writes with ErrClosed and returns an error wrapping ctx's.
// Close does not close the pool.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
	}
	w.mu.Unlock()
	select {
	case <-w.statsDone:
		return nil
	case <-ctx.Done():
	}
	w.abort()
	<-w.statsDone
	return fmt.Errorf("status writer: close: queued updates not written: %w", ctx.Err())
}

func (w *Writer) run() {
	var buf planBuf
	for {
		batch := w.next()
		if batch == nil {
			return
		}
		w.flush(batch, &buf)
		buf.release() // keep no event alive until the next flush
		w.flushEnded()
	}
}

// flushEnded counts a flush as ended and wakes a flusher that waits for it
// (take held its small batch back).
func (w *Writer) flushEnded() {
	w.mu.Lock()
	w.flushing--
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// next waits for work and returns the next batch, or nil once closed and
// drained.
func (w *Writer) next() []*request {
	for {
		w.mu.Lock()
		n, closed := len(w.queue), w.closed
		var oldest time.Time
		if n > 0 {
			oldest = w.queue[0].queuedAt
		}
		w.mu.Unlock()
		if n > 0 {
			w.linger(oldest)
			batch, heldUntil := w.take()
			if len(batch) > 0 {
				return batch
			}
			// Another flusher took everything while this one lingered, or
			// the batch is held back behind a running flush: wait for news
			// (a request, a flush's end, the end of the hold) rather than
			// flush nothing.
			w.await(heldUntil)
			continue
		}
		if closed {
			return nil
		}
		w.await(time.Time{})
	}
}

// linger waits until MaxWait after the oldest queued request, unless the
// batch is full or the writer is closing. Requests that queued while the
// previous flush ran have waited already and go at once.
func (w *Writer) linger(oldest time.Time) {
	wait := time.Until(oldest.Add(w.opt.MaxWait))
	if w.opt.MaxWait < 0 || wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for !w.full() {
		select {
		case <-t.C:
			return
		case <-w.stop:
			return
		case <-w.wake:
		}
	}
}

func (w *Writer) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queuedLocked() >= w.opt.MaxBatch
}

// queuedLocked is the number of updates queued; w.mu must be held.
func (w *Writer) queuedLocked() int {
	n := 0
	for _, r := range w.queue {
		n += len(r.updates)
	}
	return n
}

// holdFactor × Options.MaxWait bounds how long ParallelMin holds a batch
// back (50 ms by default).
const holdFactor = 10

// await waits for a request, a flush's end or Close, and for no longer
// than until when it is set (a held batch's end of hold).
func (w *Writer) await(until time.Time) {
	if until.IsZero() {
		select {
		case <-w.wake:
		case <-w.stop:
		}
		return
	}
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	select {
	case <-w.wake:
	case <-w.stop:
	case <-t.C:
	}
}

// take removes up to MaxBatch updates' worth of requests (at least one,
// unless the queue is empty) from the front of the queue, and counts a
// flush as running. While another flush runs and fewer than ParallelMin
// updates are queued, it takes nothing and returns until when the batch
// is held back (unless the writer is closing or the hold is over).
func (w *Writer) take() (batch []*request, heldUntil time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return nil, time.Time{}
	}
	if w.flushing > 0 && !w.closed && w.queuedLocked() < w.opt.ParallelMin && w.opt.MaxWait > 0 {
		if until := w.queue[0].queuedAt.Add(holdFactor * w.opt.MaxWait); time.Now().Before(until) {
			return nil, until // held back: see Options.ParallelMin
		}
	}
	w.flushing++ // the caller flushes the batch, then calls flushEnded
	n, i := 0, 0
	for i < len(w.queue) && (i == 0 || n+len(w.queue[i].updates) <= w.opt.MaxBatch) {
		n += len(w.queue[i].updates)
		i++
	}
	batch = make([]*request, i)
	copy(batch, w.queue[:i])
	rest := copy(w.queue, w.queue[i:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	return batch, time.Time{}
}

// finish answers every request of a batch and takes it off the gauge. A
// request is not touched once answered: its Write may recycle it at once.
func (w *Writer) finish(reqs []*request, err error) {
	n := countUpdates(reqs)
	for _, r := range reqs {
		r.done <- err
	}
	w.mu.Lock()
	w.pending -= n
	w.gauge()
	w.mu.Unlock()
}
