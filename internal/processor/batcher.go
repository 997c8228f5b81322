package processor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/internal/chans"
	"github.com/neo-events/neo-events/internal/logging"
	"github.com/neo-events/neo-events/internal/store"
)

// batcher sends the small Redis writes of many concurrent events (done
// markers, acknowledgements, finalize scripts) in shared pipelines: one
// round trip for everything queued while the previous pipeline was in
// flight. Plain acknowledgements of one pipeline are merged into one XACK
// per stream and one DEL for their done-markers. Ops run in the order they
// were queued, so a done-marker queued before its event's acknowledgement
// is written before it.
//
// Plain acknowledgements are not waited for (ack): the event's outcome is
// already final (recorded in PostgreSQL when status writes are on), so its
// goroutine and concurrency slot go to the next delivery while the XACK is
// on its way. A failed XACK leaves the entry pending, to be reclaimed and
// redelivered, which is what a waiting caller could do about it too; the
// batcher logs it with the event's ids. The queue's capacity bounds the
// acknowledgements in flight, and run sends every queued one before it
// returns, so a worker that stops cleanly leaves none unsent.
type batcher struct {
	rdb   redis.UniversalClient
	ops   chan *op
	max   int
	group string
	log   *zap.Logger

	// Scratch of run's goroutine, reused from one pipeline to the next.
	batch    []*op
	bounds   []int
	acks     []*op
	byStream map[string][]string
	order    []string
	keys     []string
	// linger is how long a small batch waits for more (defaultLinger);
	// lingerTimer is gather's timer, reused.
	linger      time.Duration
	lingerTimer *time.Timer
}

type op struct {
	fill  func(pipe redis.Pipeliner) // nil for an ack or a mark
	isAck bool
	ack   ackOp
	// mark is set on the ops of markOps only: its execution row makes it
	// four times the size of the rest of an op, which every event's
	// acknowledgement would carry otherwise.
	mark *markOp
	done chan error // nil: nobody waits (best-effort writes, acknowledgements)
}

// waitOps recycles the ops that callers wait for, with their channels
// (finalize scripts: retries, dead letters). An op goes back only after
// its result was received (or it never entered the queue), when the
// batcher no longer looks at it.
var waitOps = sync.Pool{New: func() any { return &op{done: make(chan error, 1)} }}

// ackOps recycles acknowledgement ops: one per event, owned by the batcher
// from the moment they are queued until exec has sent them.
var ackOps = sync.Pool{New: func() any { return new(op) }}

// ackOp acknowledges one entry and drops its event's done-marker. The
// event's ids are for the log line of a failed acknowledgement.
type ackOp struct {
	stream, id, doneKey    string
	eventID, correlationID uuid.UUID
}

// markOps recycles done-marker ops (markOp) with their buffers, owned by
// the batcher from the moment they are queued until exec has sent them.
var markOps = sync.Pool{New: func() any { return &op{mark: new(markOp)} }}

// markOp writes one completed attempt into its event's done-marker. row is
// where the caller builds the execution row and record its JSON: both stay
// with the pooled op, so a marker costs no allocation of its own (they
// were a tenth of the bytes a worker allocated per event).
type markOp struct {
	key, action string
	row         store.Execution
	record      []byte
}

// maxKeptRecord bounds the record buffer a pooled mark op keeps: the
// record of an action with a large input or output is not kept.
const maxKeptRecord = 4 << 10

// newMark returns a pooled mark op with an empty row, for sendMark.
func newMark() *op { return markOps.Get().(*op) }

// sendMark encodes o's row as the marker's record and queues it without
// waiting: a lost marker can only make a crash re-run an action, which
// at-least-once delivery allows.
func (b *batcher) sendMark(ctx context.Context, o *op, key, action string) {
	o.mark.key, o.mark.action = key, action
	o.mark.record = appendRecord(o.mark.record[:0], &o.mark.row)
	o.mark.row = store.Execution{} // its data is in the record now
	if b.queue(ctx, o) != nil {
		recycleMark(o)
	}
}

// recycleMark puts a mark op back once exec is done with it.
func recycleMark(o *op) {
	m := o.mark
	rec := m.record[:0]
	if cap(rec) > maxKeptRecord {
		rec = nil
	}
	*m = markOp{record: rec}
	*o = op{mark: m}
	markOps.Put(o)
}

func newBatcher(rdb redis.UniversalClient, max int, group string, log *zap.Logger) *batcher {
	return &batcher{rdb: rdb, ops: make(chan *op, 4*max), max: max, group: group, log: log, linger: defaultLinger}
}

// do queues fill's commands and waits for their pipeline. ctx bounds the
// wait to enter the queue; once sent, the result is awaited, since the
// caller must know whether its acknowledgement happened.
func (b *batcher) do(ctx context.Context, fill func(pipe redis.Pipeliner)) error {
	o := waitOps.Get().(*op)
	o.fill = fill
	return b.wait(ctx, o)
}

// ack queues the acknowledgement of an entry whose event is final with
// nothing else to write, and returns without waiting for it (see batcher).
// An error means it was not queued: ctx ended first.
func (b *batcher) ack(ctx context.Context, a ackOp) error {
	o := ackOps.Get().(*op)
	o.isAck, o.ack = true, a
	if err := b.queue(ctx, o); err != nil {
		*o = op{}
		ackOps.Put(o)
		return err
	}
	return nil
}

// wait queues a pooled op, waits for its result and recycles it.
func (b *batcher) wait(ctx context.Context, o *op) error {
	err := b.queue(ctx, o)
	*o = op{done: o.done}
	waitOps.Put(o)
	return err
}

func (b *batcher) queue(ctx context.Context, o *op) error {
	done := o.done // once queued, an op nobody waits for is the batcher's
	if !chans.Send(ctx, b.ops, o) {
		return ctx.Err()
	}
	if done == nil {
		return nil
	}
	return <-done
}

// run serves the queue until stop is closed and the queue is empty.
func (b *batcher) run(stop <-chan struct{}) {
	for {
		var first *op
		select {
		case first = <-b.ops:
		case <-stop:
			for {
				select {
				case o := <-b.ops:
					b.exec([]*op{o})
				default:
					return
				}
			}
		}
		batch := b.gather(append(b.batch[:0], first), stop)
		b.exec(batch)
		clear(batch) // drop the ops: pooled ones are reused by others
		b.batch = batch[:0]
	}
}

// lingerBelow and defaultLinger: a pipeline of fewer than lingerBelow ops
// that nobody waits for waits up to the linger for more. At moderate rates
// the done-markers and acknowledgements came a few at a time, each few in
// a pipeline of its own (a write, a read and wake-ups): the batcher was a
// fifth of a worker's CPU at 10K events/s. Nobody waits for them, so only
// the writes are later, by at most the linger; an op someone waits for
// ends the wait, and so do a full batch and stopping.
const (
	lingerBelow   = 32
	defaultLinger = 2 * time.Millisecond
)

// gather adds to batch what is queued, up to b.max ops, lingering for more
// while the batch is small and nobody waits for it.
func (b *batcher) gather(batch []*op, stop <-chan struct{}) []*op {
	batch = b.gatherQueued(batch)
	if len(batch) >= min(lingerBelow, b.max) || b.linger <= 0 || waited(batch) {
		return batch
	}
	if b.lingerTimer == nil {
		b.lingerTimer = time.NewTimer(b.linger)
	} else {
		b.lingerTimer.Reset(b.linger)
	}
	defer b.lingerTimer.Stop()
	for len(batch) < b.max {
		select {
		case o := <-b.ops:
			batch = append(batch, o)
			if o.done != nil {
				return b.gatherQueued(batch) // someone waits: send now
			}
		case <-b.lingerTimer.C:
			return b.gatherQueued(batch)
		case <-stop:
			return b.gatherQueued(batch)
		}
	}
	return batch
}

// gatherQueued adds what is queued, without waiting, up to b.max ops.
func (b *batcher) gatherQueued(batch []*op) []*op {
	for len(batch) < b.max {
		select {
		case o := <-b.ops:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// waited reports whether someone waits for an op of batch.
func waited(batch []*op) bool {
	for _, o := range batch {
		if o.done != nil {
			return true
		}
	}
	return false
}

func (b *batcher) exec(batch []*op) {
	pipe := b.rdb.Pipeline()
	// A background context: results must come back even while shutting
	// down, or callers would not know whether they acknowledged.
	ctx := context.Background()
	bounds := append(b.bounds[:0], make([]int, len(batch)+1)...)
	b.bounds = bounds
	acks := b.acks[:0]
	for i, o := range batch {
		switch {
		case o.isAck:
			acks = append(acks, o)
		case o.mark != nil:
			markDone(ctx, pipe, o.mark.key, o.mark.action, o.mark.record)
		default:
			o.fill(pipe)
		}
		bounds[i+1] = pipe.Len()
	}
	ackStart := pipe.Len()
	ackCmds := b.fillAcks(ctx, pipe, acks)
	total := pipe.Len()
	cmds, execErr := pipe.Exec(ctx)
	if len(cmds) < total && execErr == nil {
		execErr = fmt.Errorf("redis pipeline returned %d of %d results", len(cmds), total)
	}
	for i, o := range batch {
		if o.isAck {
			continue
		}
		err := cmdsErr(cmds, bounds[i], bounds[i+1], execErr)
		if o.done != nil {
			o.done <- err // the op is its waiter's again: not to be touched
			continue
		}
		if err != nil {
			b.log.Warn("best-effort Redis write failed", zap.Error(err))
		}
		if o.mark != nil {
			recycleMark(o)
		}
	}
	if len(acks) > 0 {
		if err := cmdsErr(cmds, ackStart, ackStart+ackCmds, execErr); err != nil {
			b.ackFailed(acks, err)
		}
		for _, o := range acks {
			*o = op{}
			ackOps.Put(o)
		}
	}
	clear(acks)
	b.acks = acks[:0]
}

// msgNotAcked is the warning for an entry left unacknowledged after its
// outcome was decided.
const msgNotAcked = "could not acknowledge; the entry will be redelivered (completed actions are not re-run)"

// ackFailed logs the acknowledgements of a failed pipeline, one line per
// event, as each event's own goroutine logged them when it waited.
func (b *batcher) ackFailed(acks []*op, err error) {
	for _, o := range acks {
		fields := []zap.Field{zap.String(logging.KeyStream, o.ack.stream), zap.String(logging.KeyEntryID, o.ack.id),
			zap.Stringer(logging.KeyEventID, o.ack.eventID), zap.Error(err)}
		if o.ack.correlationID != uuid.Nil {
			fields = append(fields, zap.Stringer(logging.KeyCorrelationID, o.ack.correlationID))
		}
		b.log.Warn(msgNotAcked, fields...)
	}
}

// fillAcks adds one XACK per stream and one DEL for the done-markers, and
// returns how many commands it added.
func (b *batcher) fillAcks(ctx context.Context, pipe redis.Pipeliner, acks []*op) int {
	if len(acks) == 0 {
		return 0
	}
	if b.byStream == nil {
		b.byStream = map[string][]string{}
	}
	byStream, order, keys := b.byStream, b.order[:0], b.keys[:0]
	for _, o := range acks {
		ids := byStream[o.ack.stream]
		if len(ids) == 0 { // the stream's first ack of this pipeline
			order = append(order, o.ack.stream)
		}
		byStream[o.ack.stream] = append(ids, o.ack.id)
		if o.ack.doneKey != "" {
			keys = append(keys, o.ack.doneKey)
		}
	}
	for _, s := range order {
		// XAck copies the ids into its command's arguments.
		pipe.XAck(ctx, s, b.group, byStream[s]...)
	}
	n := len(order)
	if len(keys) > 0 {
		// Unlink too copies the keys.
		pipe.Unlink(ctx, keys...)
		n++
	}
	b.keepAckScratch(order, keys)
	return n
}

// keepAckScratch empties fillAcks's scratch for the next pipeline, keeping
// the memory but no strings. The streams' id slices are kept unless there
// were many streams (a worker reads a handful).
func (b *batcher) keepAckScratch(order, keys []string) {
	if len(b.byStream) > 64 {
		clear(b.byStream)
	}
	for s, ids := range b.byStream {
		clear(ids)
		b.byStream[s] = ids[:0]
	}
	clear(order)
	clear(keys)
	b.order, b.keys = order[:0], keys[:0]
}

// cmdsErr is the first error among cmds[from:to], or execErr when the
// pipeline did not return them.
func cmdsErr(cmds []redis.Cmder, from, to int, execErr error) error {
	if len(cmds) < to {
		return fmt.Errorf("redis pipeline: %w", execErr)
	}
	for _, c := range cmds[from:to] {
		if e := c.Err(); e != nil && e != redis.Nil {
			return fmt.Errorf("%s: %w", c.Name(), e)
		}
	}
	return nil
}
