package dispatch

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// attemptCtx is the context a handler runs under: the caller's context
// with the attempt's deadline. It behaves as context.WithDeadline(parent,
// deadline) cancelled when the attempt ends, but it arms nothing (no timer,
// no channel, no registration with the parent) until someone asks for
// Done: a handler that returns without selecting on its context costs one
// small allocation instead of five and the timer heap's work. Err, Deadline
// and Value answer without arming.
//
// It is also the watchdog's record of the call (see watchdog).
type attemptCtx struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex
	inner  context.Context // context.WithDeadline(parent, deadline), made by arm
	cancel context.CancelFunc
	ended  bool // the attempt is over: the context is cancelled

	// Guarded by the mutex of the watchdog's shard.
	shard     uint8
	idx       int       // position in the shard's calls
	since     time.Time // when the deadline passed or the parent ended, as the watchdog saw it
	abandoned bool
	result    chan callResult // the handler's error, or the watchdog's abandonment
}

// callResult is what ends the caller's wait for a handler.
type callResult struct {
	err       error
	abandoned bool // the watchdog gave up on the handler
}

func newAttemptCtx(parent context.Context, deadline time.Time) *attemptCtx {
	return &attemptCtx{parent: parent, deadline: deadline, result: make(chan callResult, 1)}
}

// arm makes the real context on first use.
func (c *attemptCtx) arm() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		c.inner, c.cancel = context.WithDeadline(c.parent, c.deadline)
		if c.ended {
			c.cancel()
		}
	}
	return c.inner
}

// end cancels the context: the attempt is over (as the deferred cancel of
// context.WithTimeout would).
func (c *attemptCtx) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	if c.cancel != nil {
		c.cancel()
	}
}

// Deadline is the attempt's deadline, or the parent's when it comes first.
func (c *attemptCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

// Done arms the context.
func (c *attemptCtx) Done() <-chan struct{} { return c.arm().Done() }

// Err answers as the armed context would: the parent's error first, then
// the deadline, then the attempt's end. Arming later gives the same answer
// (context.WithDeadline checks them in that order), so Err never changes
// once it is not nil.
func (c *attemptCtx) Err() error {
	c.mu.Lock()
	inner, ended := c.inner, c.ended
	c.mu.Unlock()
	if inner != nil {
		return inner.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	if ended {
		return context.Canceled
	}
	return nil
}

// Value delegates to the armed context once there is one, so that
// contexts derived from this one register with it (as children of a
// standard cancelable context) instead of watching it from a goroutine.
func (c *attemptCtx) Value(key any) any {
	c.mu.Lock()
	inner := c.inner
	c.mu.Unlock()
	if inner != nil {
		return inner.Value(key)
	}
	return c.parent.Value(key)
}

// watchdog abandons handlers that ignore their context: when a call's
// deadline has passed (or its caller's context ended) and grace more has
// gone by, the caller stops waiting; the handler keeps its goroutine and
// its concurrency slot until it returns. One goroutine per dispatcher
// checks the calls in flight every tick; it runs only while there are
// some, so an idle dispatcher has none. This replaces a timer and a
// cancelable context per call: handlers that return on time, nearly all
// of them, cost two short critical sections, spread over shards so that
// concurrent calls rarely wait for each other.
type watchdog struct {
	grace, tick time.Duration
	running     atomic.Bool
	shards      [watchShards]watchShard
}

const watchShards = 16

type watchShard struct {
	mu    sync.Mutex
	calls []*attemptCtx
	_     [32]byte // keeps shards off each other's cache lines
}

func newWatchdog(grace time.Duration) *watchdog {
	return &watchdog{grace: grace, tick: min(max(grace/5, time.Millisecond), 100*time.Millisecond)}
}

// add watches c until remove.
func (w *watchdog) add(c *attemptCtx) {
	c.shard = uint8(rand.Uint32() % watchShards)
	sh := &w.shards[c.shard]
	sh.mu.Lock()
	c.idx = len(sh.calls)
	sh.calls = append(sh.calls, c)
	sh.mu.Unlock()
	if !w.running.Load() && w.running.CompareAndSwap(false, true) {
		go w.run()
	}
}

func (w *watchdog) remove(c *attemptCtx) {
	sh := &w.shards[c.shard]
	sh.mu.Lock()
	last := len(sh.calls) - 1
	moved := sh.calls[last]
	sh.calls[c.idx] = moved
	moved.idx = c.idx
	sh.calls[last] = nil
	sh.calls = sh.calls[:last]
	sh.mu.Unlock()
}

func (w *watchdog) run() {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for range t.C {
		if w.check(time.Now()) > 0 {
			continue
		}
		// Idle: stop, unless a call came in meanwhile and its add saw the
		// watchdog still running (then this goroutine carries on; if add
		// saw it stopped, add started another one and this one leaves).
		w.running.Store(false)
		if w.check(time.Now()) == 0 || !w.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// check abandons the calls past their deadline (or whose caller's context
// ended) by more than grace, and returns how many calls are in flight.
func (w *watchdog) check(now time.Time) int {
	n := 0
	for i := range w.shards {
		sh := &w.shards[i]
		sh.mu.Lock()
		n += len(sh.calls)
		for _, c := range sh.calls {
			w.checkCall(c, now)
		}
		sh.mu.Unlock()
	}
	return n
}

// checkCall abandons c when its time is up; call it with c's shard locked.
func (w *watchdog) checkCall(c *attemptCtx, now time.Time) {
	if c.abandoned {
		return
	}
	if c.since.IsZero() {
		switch {
		case !now.Before(c.deadline):
			c.since = c.deadline
		case c.parent.Err() != nil:
			c.since = now
		default:
			return
		}
	}
	if now.Sub(c.since) >= w.grace {
		c.abandoned = true
		select {
		case c.result <- callResult{abandoned: true}:
		default: // the handler's result is already there
		}
	}
}
