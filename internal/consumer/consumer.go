// Package consumer is the Redis side of a worker: it finds the streams a
// worker subscribes to (resolved against the `{prefix}:streams` registry
// and refreshed at runtime), creates the consumer group on each (at ID 0),
// reads new entries with batched XREADGROUP, reclaims entries left pending
// by dead or stuck consumers with XAUTOCLAIM, removes idle consumers that
// hold nothing, and hands every entry to a Processor with bounded
// concurrency. It never acknowledges anything itself: the Processor does,
// once the entry's outcome is durable.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/internal/chans"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/streams"
	"github.com/neo-events/neo-events/internal/xread"
)

// Delivery is one stream entry handed to the Processor.
type Delivery struct {
	Stream string
	ID     string
	// Fields are the entry's fields as flat pairs: key, value, key,
	// value, ... (see event.DecodeFields).
	Fields []string
	// Redelivered is true when the entry may have been processed before:
	// reclaimed from another consumer, or re-read from this consumer's own
	// pending list after a restart.
	Redelivered bool
	// Slot is the delivery's concurrency slot; see Slot.Release.
	Slot Slot
}

// recordingFactor × Options.Concurrency bounds the deliveries whose
// handlers are done and whose outcome is still being recorded (Slot.Release).
const recordingFactor = 4

// Slot is a delivery's concurrency slot. Process holds it while the
// delivery's handlers run. Once they are done, Release gives it to the next
// delivery while Process goes on to record the outcome (status write,
// acknowledgement): a slow status flush then no longer stops the reads, so
// events wait in a stream behind it only when recordingFactor ×
// Concurrency deliveries are recording at once. The zero Slot (a task not
// run by the pool) releases nothing.
type Slot struct{ s *poolSlot }

// poolSlot is one pool worker's slot state; the worker runs one task at a
// time, so only that task's Process touches it.
type poolSlot struct {
	c     *Consumer
	moved bool // the task holds a recording slot instead of its slot
}

// Release frees the slot for the next delivery and counts this one as
// recording instead. It waits while recordingFactor × Concurrency
// deliveries are recording, keeping the slot (and so stopping the reads)
// meanwhile; if ctx ends first it keeps the slot and returns. Calling it
// again does nothing.
func (s Slot) Release(ctx context.Context) {
	p := s.s
	if p == nil || p.moved {
		return
	}
	if !chans.Send(ctx, p.c.recording, struct{}{}) {
		return
	}
	<-p.c.sem
	p.moved = true
}

// Processor handles one delivery. It must acknowledge the entry (or leave
// it pending for redelivery) itself. ctx ends when the worker gives up on
// in-flight work at the end of its shutdown timeout.
type Processor interface {
	Process(ctx context.Context, d Delivery)
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, d Delivery)

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, d Delivery) { f(ctx, d) }

// Options configures a Consumer. Zero durations take the config defaults.
type Options struct {
	Prefix        string
	Group         string
	Consumer      string
	Subscriptions []string
	Concurrency   int
	BatchSize     int
	Block         time.Duration
	ClaimMinIdle  time.Duration
	ClaimInterval time.Duration
	// Refresh is how often the registry set is re-read in full. Between
	// full reads its size is polled every Refresh/10 (at most 100ms), and a
	// change triggers a full read at once, so a new stream is read within
	// about 100ms. Defaults to 1s.
	Refresh time.Duration
	// IdleConsumerAfter removes other consumers idle this long with nothing
	// pending. Defaults to max(10 × ClaimMinIdle, 10m).
	IdleConsumerAfter time.Duration
	Logger            *zap.Logger
	Metrics           *metrics.Worker
}

// Consumer reads a group's streams and feeds a Processor.
type Consumer struct {
	rdb  redis.UniversalClient
	opt  Options
	subs []streams.Subscription
	proc Processor
	log  *zap.Logger

	sem  chan struct{} // a slot per delivery whose handlers run
	work sync.WaitGroup
	// recording holds a slot per delivery whose handlers are done and
	// whose outcome is being recorded (Slot.Release).
	recording chan struct{}
	// inflight is the worker_inflight child of the group (nil without
	// metrics): looked up once, not twice per entry.
	inflight prometheus.Gauge

	// The pool runs dispatched work on goroutines that outlive one event,
	// so their stacks, grown once, are reused: a fresh goroutine per event
	// grew and copied its stack for every event. idle counts workers
	// committed to take the next task; tasks hands it over, a plain
	// channel operation on both sides (a select with a quit channel took
	// twice the locking per entry). When Run returns it closes tasks under
	// poolMu, which every hand-over holds for reading: no send can meet
	// the closed channel, and idle workers see it closed and exit.
	idle     atomic.Int64
	tasks    chan task
	poolMu   sync.RWMutex
	poolDone bool // guarded by poolMu: tasks is closed

	mu      sync.Mutex
	streams []string        // subscribed streams with a group, sorted
	grouped map[string]bool // streams whose group this consumer created or saw
	ready   bool

	// regSize is the registry's size at the last full read (-1: none yet).
	regSize atomic.Int64
	// readerID is the Redis client id of the read loop's connection while
	// it is known (0 otherwise): a refresh that finds new streams unblocks
	// the read loop's XREADGROUP (CLIENT UNBLOCK), which then reads them
	// too instead of waiting out its Block on the old list.
	readerID atomic.Int64
	// wake tells a read loop that had no streams that some appeared.
	wake chan struct{}
}

// New returns a Consumer; Run starts it.
func New(rdb redis.UniversalClient, opt Options, proc Processor) (*Consumer, error) {
	if opt.Refresh <= 0 {
		opt.Refresh = time.Second
	}
	if opt.IdleConsumerAfter <= 0 {
		opt.IdleConsumerAfter = max(10*opt.ClaimMinIdle, 10*time.Minute)
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.Concurrency <= 0 || opt.BatchSize <= 0 || opt.Block <= 0 || opt.ClaimInterval <= 0 || opt.ClaimMinIdle <= 0 {
		return nil, errors.New("consumer: concurrency, batch size, block, claim interval and claim min idle must be positive")
	}
	c := &Consumer{
		rdb: rdb, opt: opt, proc: proc, log: opt.Logger,
		sem:       make(chan struct{}, opt.Concurrency),
		recording: make(chan struct{}, recordingFactor*opt.Concurrency),
		grouped:   map[string]bool{},
		wake:      make(chan struct{}, 1),
		tasks:     make(chan task),
	}
	if opt.Metrics != nil {
		c.inflight = opt.Metrics.Inflight.WithLabelValues(opt.Group)
	}
	c.regSize.Store(-1)
	for _, s := range opt.Subscriptions {
		sub, err := streams.ParseSubscription(s)
		if err != nil {
			return nil, fmt.Errorf("consumer: %w", err)
		}
		c.subs = append(c.subs, sub)
	}
	if len(c.subs) == 0 {
		return nil, errors.New("consumer: no subscriptions")
	}
	return c, nil
}

// Streams returns the streams currently consumed.
func (c *Consumer) Streams() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.streams...)
}

// Ready reports whether the consumer has resolved its streams once.
func (c *Consumer) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

// Run consumes until readCtx ends, then waits for in-flight work. Work runs
// under workCtx, which the caller cancels when its shutdown timeout ends so
// that handlers stop; entries left unacknowledged are reclaimed by others.
func (c *Consumer) Run(readCtx, workCtx context.Context) error {
	if err := c.refresh(readCtx); err != nil && readCtx.Err() == nil {
		c.log.Warn("resolve streams; retrying in the background", zap.Error(err))
	}
	var loops sync.WaitGroup
	loops.Add(3)
	go func() { defer loops.Done(); c.refreshLoop(readCtx) }()
	go func() { defer loops.Done(); c.claimLoop(readCtx, workCtx) }()
	go func() { defer loops.Done(); c.readLoop(readCtx, workCtx) }()
	loops.Wait()
	c.work.Wait()
	c.closePool()
	return nil
}

// closePool ends the pool's idle workers; later tasks run on goroutines of
// their own.
func (c *Consumer) closePool() {
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	if !c.poolDone {
		c.poolDone = true
		close(c.tasks)
	}
}

// Dispatch runs fn under the consumer's concurrency bound, so other work
// (such as due retries) shares the worker's in-flight limit. It blocks
// while every slot is taken and returns false if ctx ends first.
func (c *Consumer) Dispatch(ctx, workCtx context.Context, fn func(ctx context.Context)) bool {
	return c.dispatch(ctx, task{ctx: workCtx, fn: fn})
}

// dispatch takes a slot and hands t to an idle pool worker, or to a new one.
func (c *Consumer) dispatch(ctx context.Context, t task) bool {
	if !c.acquire(ctx) {
		return false
	}
	c.work.Add(1)
	if c.inflight != nil {
		c.inflight.Inc()
	}
	c.poolMu.RLock()
	defer c.poolMu.RUnlock()
	if c.poolDone {
		// The consumer stopped: no pool any more.
		go func() { c.runTask(t); <-c.sem }()
		return true
	}
	for {
		n := c.idle.Load()
		if n == 0 {
			go c.poolWorker(t)
			return true
		}
		if c.idle.CompareAndSwap(n, n-1) {
			// A worker counted itself idle before releasing its slot and
			// is (about to be) waiting for this send; tasks cannot close
			// while this hand-over holds poolMu.
			c.tasks <- t
			return true
		}
	}
}

// acquire takes a concurrency slot, waiting while all are taken; false if
// ctx ends first (chans.Send: a stopping reader hands over no more than
// before).
func (c *Consumer) acquire(ctx context.Context) bool {
	return chans.Send(ctx, c.sem, struct{}{})
}

// task is one dispatched piece of work: fn, or (fn nil) the delivery d for
// the Processor, which then needs no closure of its own.
type task struct {
	ctx context.Context
	fn  func(ctx context.Context)
	d   Delivery
}

// poolWorker runs t, then further tasks until the consumer stops. The pool
// never outgrows Concurrency plus the recording bound: a worker counts
// itself idle before it releases its slot (or its recording slot, see
// Slot), and Dispatch starts a new one only when none is idle, that is when
// every existing worker holds one. A worker that finds Concurrency workers
// idle already exits instead: they can take every task the free slots
// allow, and a burst of recording events would otherwise leave up to
// 5 × Concurrency parked goroutines, with their grown stacks, for good.
func (c *Consumer) poolWorker(t task) {
	ps := &poolSlot{c: c}
	for {
		ps.moved = false
		if t.fn == nil {
			t.d.Slot = Slot{ps}
		}
		c.runTask(t)
		stay := c.goIdle()
		if ps.moved {
			<-c.recording
		} else {
			<-c.sem
		}
		if !stay {
			return
		}
		var ok bool
		if t, ok = c.nextTask(); !ok {
			return // the consumer stopped
		}
	}
}

// parkedStack is how much stack an idle pool worker keeps in use while it
// waits for its next task (see nextTask).
const parkedStack = 2048

// nextTask waits for the next task on a frame of parkedStack bytes. Every
// garbage collection halves the stack of a goroutine that uses less than a
// quarter of it, and a parked worker uses almost none: so after each
// collection every idle worker's stack was shrunk, and the next event grew
// it back, copying it (runtime.copystack: 5 % of a drain's CPU profile).
// Parked this deep, a worker keeps a stack of up to 4 × parkedStack, which
// an event needs; a larger one still shrinks back to that. Measured:
// worker mode without status writes, the same gain as turning shrinking
// off for the whole process (GODEBUG=gcshrinkstackoff=1), with 2 KB and 4
// KB alike.
//
//go:noinline
func (c *Consumer) nextTask() (task, bool) {
	var pad [parkedStack]byte
	keepFrame(&pad)
	t, ok := <-c.tasks
	return t, ok
}

// keepFrame makes the compiler keep pad on nextTask's frame.
//
//go:noinline
func keepFrame(*[parkedStack]byte) {}

// goIdle counts the calling worker idle, unless Concurrency workers are
// idle already; false: the worker should exit.
func (c *Consumer) goIdle() bool {
	for {
		n := c.idle.Load()
		if n >= int64(cap(c.sem)) {
			return false
		}
		if c.idle.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// runTask runs one task; the caller releases its slot afterwards.
func (c *Consumer) runTask(t task) {
	defer c.taskDone()
	if t.fn != nil {
		t.fn(t.ctx)
		return
	}
	c.proc.Process(t.ctx, t.d)
}

func (c *Consumer) taskDone() {
	if c.inflight != nil {
		c.inflight.Dec()
	}
	c.work.Done()
}

func (c *Consumer) handOver(readCtx, workCtx context.Context, d Delivery) bool {
	return c.dispatch(readCtx, task{ctx: workCtx, d: d})
}

func (c *Consumer) refreshLoop(ctx context.Context) {
	full := time.NewTicker(c.opt.Refresh)
	defer full.Stop()
	probe := time.NewTicker(probeInterval(c.opt.Refresh))
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-full.C:
		case <-probe.C:
			// SCARD is O(1): cheap enough to ask ten times a second.
			n, err := c.rdb.SCard(ctx, streams.Registry(c.opt.Prefix)).Result()
			if err != nil || n == c.regSize.Load() {
				continue // an error shows up in the next full refresh
			}
		}
		if err := c.refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("refresh streams", zap.Error(err))
		}
	}
}

// probeInterval is how often the registry's size is polled between full
// refreshes: a tenth of the refresh period, at most 100ms, at least 10ms.
func probeInterval(refresh time.Duration) time.Duration {
	return min(max(refresh/10, 10*time.Millisecond), 100*time.Millisecond)
}

// refresh resolves the subscriptions against the registry set and makes
// sure the group exists on every matching stream.
func (c *Consumer) refresh(ctx context.Context) error {
	keys, err := c.rdb.SMembers(ctx, streams.Registry(c.opt.Prefix)).Result()
	if err != nil {
		return fmt.Errorf("read stream registry: %w", err)
	}
	c.regSize.Store(int64(len(keys)))
	var matched []string
	for _, k := range keys {
		for _, s := range c.subs {
			if s.Matches(c.opt.Prefix, k) {
				matched = append(matched, k)
				break
			}
		}
	}
	sort.Strings(matched)
	for _, k := range matched {
		c.mu.Lock()
		known := c.grouped[k]
		c.mu.Unlock()
		if known {
			continue
		}
		if err := c.ensureGroup(ctx, k); err != nil {
			return err
		}
	}
	c.mu.Lock()
	before := len(c.streams)
	c.streams = c.streams[:0]
	for _, k := range matched {
		if c.grouped[k] {
			c.streams = append(c.streams, k)
		}
	}
	grew := len(c.streams) > before
	c.ready = true
	c.mu.Unlock()
	if grew {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	if id := c.readerID.Load(); grew && id != 0 {
		// The read loop may be blocked on the old list for up to Block:
		// wake it (its XREADGROUP returns as if timed out) to read the new
		// streams now. Failing that, it sees them after its Block.
		if err := c.rdb.ClientUnblock(ctx, id).Err(); err != nil && ctx.Err() == nil {
			c.log.Debug("could not unblock the reader for new streams", zap.Error(err))
		}
	}
	return nil
}

// ensureGroup creates the group at ID 0, so entries published before the
// first worker started are delivered too.
func (c *Consumer) ensureGroup(ctx context.Context, stream string) error {
	err := c.rdb.XGroupCreateMkStream(ctx, stream, c.opt.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create group %s on %s: %w", c.opt.Group, stream, err)
	}
	if err == nil {
		c.log.Info("joined stream", zap.String("stream", stream), zap.String("group", c.opt.Group))
	}
	c.mu.Lock()
	c.grouped[stream] = true
	c.mu.Unlock()
	return nil
}

// forgetGroups makes the next refresh re-create every group: after a Redis
// restart without persistence, streams and groups are gone.
func (c *Consumer) forgetGroups() {
	c.mu.Lock()
	c.grouped = map[string]bool{}
	c.mu.Unlock()
}

func (c *Consumer) readLoop(readCtx, workCtx context.Context) {
	// First this consumer's own pending entries: a restarted process with
	// the same name (a StatefulSet, a local run) takes back what it held.
	c.readOwnPending(readCtx, workCtx)
	r := &reader{c: c}
	defer r.close()
	var res []xread.Entry
	backoff := 100 * time.Millisecond
	for readCtx.Err() == nil {
		keys := c.Streams()
		if len(keys) == 0 {
			select {
			case <-readCtx.Done():
			case <-c.wake:
			case <-time.After(c.opt.Block):
			}
			continue
		}
		free := cap(c.sem) - len(c.sem)
		if free == 0 {
			// Backpressure: wait for a slot before reading more.
			if !c.waitSlot(readCtx) {
				return
			}
			continue
		}
		count := min(c.opt.BatchSize, max(1, free/len(keys)))
		args := xread.Args{
			Group: c.opt.Group, Consumer: c.opt.Consumer,
			Streams: keys, Count: count, Block: c.opt.Block,
		}
		var err error
		res, err = r.read(readCtx, args, res[:0])
		if err != nil {
			if errors.Is(err, redis.Nil) {
				backoff = 100 * time.Millisecond
				continue
			}
			if readCtx.Err() != nil {
				return
			}
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				c.log.Warn("group or stream missing (Redis restarted or stream deleted?); re-creating", zap.Error(err))
				c.forgetGroups()
				_ = c.refresh(readCtx)
			} else {
				c.log.Warn("XREADGROUP failed; backing off", zap.Error(err), zap.Duration("backoff", backoff))
			}
			sleep(readCtx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for i, e := range res {
			res[i] = xread.Entry{} // the slice is reused: keep no entry alive through it
			if !c.handOver(readCtx, workCtx, Delivery{Stream: e.Stream, ID: e.ID, Fields: e.Fields}) {
				return
			}
		}
	}
}

// reader is the read loop's own connection (internal/xread): it parses
// XREADGROUP replies without go-redis's map per entry, and a refresh can
// unblock it by client id (Consumer.readerID). With a client that is not a
// *redis.Client (a cluster), or options xread cannot honour, reads go
// through go-redis and new streams wait out the current Block.
type reader struct {
	c        *Consumer
	conn     *xread.Conn
	fallback bool
}

func (r *reader) read(ctx context.Context, a xread.Args, dst []xread.Entry) ([]xread.Entry, error) {
	cl, ok := r.c.rdb.(*redis.Client)
	if !ok || r.fallback {
		return r.readGoRedis(ctx, a, dst)
	}
	if r.conn == nil {
		conn, err := xread.Dial(ctx, cl.Options())
		if errors.Is(err, xread.ErrUnsupported) {
			r.c.log.Info("reading through go-redis: the Redis options need it", zap.Error(err))
			r.fallback = true
			return r.readGoRedis(ctx, a, dst)
		}
		if err != nil {
			return dst, fmt.Errorf("open the read connection: %w", err)
		}
		r.conn = conn
		r.c.readerID.Store(conn.ID())
	}
	res, err := r.conn.ReadGroup(ctx, dst, a)
	if r.conn.Broken() {
		r.close() // start over on a fresh connection
	}
	return res, err
}

// readGoRedis is read through the client's pool.
func (r *reader) readGoRedis(ctx context.Context, a xread.Args, dst []xread.Entry) ([]xread.Entry, error) {
	res, err := r.c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: a.Group, Consumer: a.Consumer,
		Streams: append(slices.Clip(a.Streams), repeat(">", len(a.Streams))...),
		Count:   int64(a.Count), Block: a.Block,
	}).Result()
	for _, s := range res {
		for _, m := range s.Messages {
			dst = append(dst, xread.Entry{Stream: s.Stream, ID: m.ID, Fields: Pairs(m.Values)})
		}
	}
	return dst, err
}

func (r *reader) close() {
	if r.conn == nil {
		return
	}
	r.c.readerID.Store(0)
	_ = r.conn.Close()
	r.conn = nil
}

// Pairs converts the map go-redis returns for an entry (XMessage.Values)
// into Delivery.Fields' flat pairs. Nil stays nil (an entry deleted while
// pending).
func Pairs(values map[string]any) []string {
	if values == nil {
		return nil
	}
	kv := make([]string, 0, 2*len(values))
	for k, v := range values {
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		kv = append(kv, k, s)
	}
	return kv
}

func (c *Consumer) waitSlot(ctx context.Context) bool {
	select {
	case c.sem <- struct{}{}:
		<-c.sem
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Consumer) readOwnPending(readCtx, workCtx context.Context) {
	for _, k := range c.Streams() {
		start := "0"
		for readCtx.Err() == nil {
			res, err := c.rdb.XReadGroup(readCtx, &redis.XReadGroupArgs{
				Group: c.opt.Group, Consumer: c.opt.Consumer, Streams: []string{k, start},
				Count: int64(c.opt.BatchSize),
			}).Result()
			if err != nil || len(res) == 0 || len(res[0].Messages) == 0 {
				break
			}
			for _, m := range res[0].Messages {
				start = m.ID
				if m.Values == nil {
					continue // deleted while pending; nothing to do
				}
				if !c.handOver(readCtx, workCtx, Delivery{Stream: k, ID: m.ID, Fields: Pairs(m.Values), Redelivered: true}) {
					return
				}
			}
		}
	}
}

func (c *Consumer) claimLoop(readCtx, workCtx context.Context) {
	t := time.NewTicker(c.opt.ClaimInterval)
	defer t.Stop()
	rounds := 0
	for {
		select {
		case <-readCtx.Done():
			return
		case <-t.C:
		}
		for _, k := range c.Streams() {
			if !c.claim(readCtx, workCtx, k) {
				return
			}
		}
		rounds++
		if rounds%10 == 0 {
			c.removeIdleConsumers(readCtx)
		}
	}
}

// claim takes over entries idle past ClaimMinIdle on one stream. It returns
// false when the worker is stopping.
func (c *Consumer) claim(readCtx, workCtx context.Context, stream string) bool {
	start := "0-0"
	for i := 0; i < 100; i++ { // bounded: one claim round never monopolizes the worker
		msgs, next, err := c.rdb.XAutoClaim(readCtx, &redis.XAutoClaimArgs{
			Stream: stream, Group: c.opt.Group, Consumer: c.opt.Consumer,
			MinIdle: c.opt.ClaimMinIdle, Start: start, Count: int64(c.opt.BatchSize),
		}).Result()
		if err != nil {
			if readCtx.Err() != nil {
				return false
			}
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				c.forgetGroups()
			}
			c.log.Warn("XAUTOCLAIM failed", zap.String("stream", stream), zap.Error(err))
			return true
		}
		for _, m := range msgs {
			if c.opt.Metrics != nil {
				c.opt.Metrics.ReclaimedTotal.WithLabelValues(c.opt.Group).Inc()
			}
			c.log.Info("reclaimed pending entry", zap.String("stream", stream), zap.String("entry_id", m.ID))
			if !c.handOver(readCtx, workCtx, Delivery{Stream: stream, ID: m.ID, Fields: Pairs(m.Values), Redelivered: true}) {
				return false
			}
		}
		if next == "0-0" || next == "" {
			return true
		}
		start = next
	}
	return true
}

// removeIdleConsumers deletes other consumers of the group that hold
// nothing and have been idle past IdleConsumerAfter (pods long gone).
func (c *Consumer) removeIdleConsumers(ctx context.Context) {
	for _, k := range c.Streams() {
		cons, err := c.rdb.XInfoConsumers(ctx, k, c.opt.Group).Result()
		if err != nil {
			continue
		}
		for _, ci := range cons {
			if ci.Name == c.opt.Consumer || ci.Pending > 0 || ci.Idle < c.opt.IdleConsumerAfter {
				continue
			}
			if err := c.rdb.XGroupDelConsumer(ctx, k, c.opt.Group, ci.Name).Err(); err == nil {
				c.log.Info("removed idle consumer", zap.String("stream", k), zap.String("consumer", ci.Name),
					zap.Duration("idle", ci.Idle))
			}
		}
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
