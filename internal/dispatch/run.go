package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/chans"
	"github.com/neo-events/neo-events/internal/logging"
)

// RunRequest is one attempt of one action on one event.
type RunRequest struct {
	Event       *event.Event
	Action      Action
	Attempt     int // 1 for the first attempt
	MaxAttempts int
	ExecutionID uuid.UUID
	// Logger is the logger Run and the handler derive theirs from; they add
	// LogFields, then event_id, correlation_id, action and attempt. Nil: the
	// dispatcher's.
	Logger *zap.Logger
	// LogFields name where the event is (schema, stream...). They are added
	// only when something is logged, which most attempts never do: a
	// Logger already carrying them costs zap's field encoding per event.
	// Run and the handler keep the slice; do not modify it afterwards.
	LogFields []zap.Field
}

// runLog is Run's logger, built on first use.
type runLog struct {
	req *RunRequest
	d   *Dispatcher
	l   *zap.Logger
}

func (r *runLog) get() *zap.Logger {
	if r.l != nil {
		return r.l
	}
	base := r.req.Logger
	if base == nil {
		base = r.d.log
	}
	fields := make([]zap.Field, 0, len(r.req.LogFields)+4)
	fields = append(fields, r.req.LogFields...)
	fields = append(fields, zap.String(logging.KeyAction, r.req.Action.Name), zap.Int(logging.KeyAttempt, r.req.Attempt))
	if ev := r.req.Event; ev != nil {
		fields = append(fields, zap.Stringer(logging.KeyEventID, ev.ID))
		if ev.CorrelationID != uuid.Nil {
			fields = append(fields, zap.Stringer(logging.KeyCorrelationID, ev.CorrelationID))
		}
	}
	r.l = base.With(fields...)
	return r.l
}

// Result is what came of a Run.
type Result struct {
	// Err is the handler's error (nil on success) or why it was not called.
	Err error
	// Permanent: do not retry (handler.Permanent, or an unknown handler).
	Permanent bool
	// RetryAfter is the delay the handler asked for with handler.RetryAfter.
	RetryAfter time.Duration
	// UnknownHandler: no handler is registered under Action.HandlerName;
	// dead-letter with reason unknown_handler.
	UnknownHandler bool
	// Deferred > 0: the handler was not called (rate limit or open circuit);
	// try again after this long without counting an attempt.
	Deferred time.Duration
	// Aborted: ctx ended before the handler was called (shutdown); nothing
	// was attempted, leave the entry for redelivery.
	Aborted bool
	// TimedOut: the attempt hit the action's timeout.
	TimedOut bool
	// Started and Finished bracket the handler call; zero when it was not called.
	Started, Finished time.Time
	// Output is what the handler stored with SetOutput.
	Output json.RawMessage
	// Stack is the stack of a handler panic.
	Stack string
}

// Attempted reports whether the handler was called, so the attempt counts.
func (r Result) Attempted() bool { return !r.Started.IsZero() }

// Run executes one attempt: handler lookup, circuit breaker, fleet-wide rate
// limit, per-process concurrency bound, then the handler under the action's
// timeout.
//
// MaxConcurrent is enforced per worker process, not fleet-wide: a fleet-wide
// count needs a lease in Redis per call that survives crashes (expiring
// leases, renewals), which costs a round trip per call and can leak slots
// for a lease period after a crash. The per-process bound protects the
// process and the downstream from one pod's burst; the fleet's bound is
// MaxConcurrent times the replica count, and RateLimitPerMinute is the
// fleet-wide throttle. The wait for a slot ends with ctx.
func (d *Dispatcher) Run(ctx context.Context, req RunRequest) Result {
	a := &req.Action
	log := &runLog{req: &req, d: d}
	h, ok := d.lookup(a.HandlerName)
	if !ok {
		return Result{Err: fmt.Errorf("%w: %q (action %s)", ErrUnknownHandler, a.HandlerName, a.Name),
			UnknownHandler: true, Permanent: true}
	}
	run := d.runFor(actionKey{schema: a.Schema, id: a.ID})
	br := run.br
	wait, trial, ok := br.admit(d.opt.Now)
	if !ok {
		return Result{Err: fmt.Errorf("action %s: circuit open", a.Name), Deferred: wait}
	}
	if wait := d.rateLimited(ctx, a, log); wait > 0 {
		br.release(trial)
		return Result{Err: fmt.Errorf("action %s: rate limited", a.Name), Deferred: wait}
	}
	sem, err := d.acquire(ctx, run, a.MaxConcurrent)
	if err != nil {
		br.release(trial)
		return Result{Err: err, Aborted: true}
	}
	res := d.call(ctx, h, &req, run, sem, log)
	o := classify(ctx, res)
	t := br.record(o, trial, res.Finished, d.opt.BreakerThreshold, d.opt.BreakerCooldown)
	if t != noTransition {
		d.reportTransition(ctx, a, t, res.Err, log)
	}
	return res
}

func (d *Dispatcher) lookup(name string) (handler.Handler, bool) {
	if d.opt.Registry == nil {
		return nil, false
	}
	return d.opt.Registry.Lookup(name)
}

// classify turns a result into what the breaker learns from it.
func classify(ctx context.Context, r Result) outcome {
	switch {
	case r.Err == nil:
		return outcomeSuccess
	case ctx.Err() != nil && !r.TimedOut:
		return outcomeNeutral
	case r.Permanent && r.Stack == "":
		return outcomeNeutral
	}
	return outcomeFailure
}

// call runs the handler in its own goroutine so that a handler ignoring its
// deadline costs a goroutine and a concurrency slot (released when it does
// return), not the worker's progress: the dispatcher's watchdog abandons it
// TimeoutGrace after its deadline (or after ctx ended).
func (d *Dispatcher) call(ctx context.Context, h handler.Handler, rr *RunRequest, run *actionRun, sem *semaphore, log *runLog) Result {
	a := &rr.Action
	hreq := &handler.Request{
		Event: rr.Event,
		Action: handler.Action{ID: a.ID, Name: a.Name, Type: a.Type, HandlerName: a.HandlerName,
			Config: a.Config, Timeout: a.Timeout},
		Attempt: rr.Attempt, MaxAttempts: rr.MaxAttempts, ExecutionID: rr.ExecutionID,
	}
	base := rr.Logger
	if base == nil {
		base = d.log
	}
	hreq.SetLogger(base, rr.LogFields...)
	timeout := hreq.Timeout()
	now := time.Now()
	res := Result{Started: now}
	if !d.realClock {
		res.Started = d.opt.Now()
	}
	actx := newAttemptCtx(ctx, now.Add(timeout))
	d.watch.add(actx)
	go func() {
		defer sem.release()
		err := handler.Call(actx, h, hreq)
		actx.result <- callResult{err: err}
	}()
	r := <-actx.result
	d.watch.remove(actx)
	err := r.err
	if r.abandoned {
		err = abandoned(actx, timeout, log)
	}
	// Only a failure asks whether the deadline passed (Err reads the clock).
	deadlineHit := err != nil && errors.Is(actx.Err(), context.DeadlineExceeded)
	actx.end()
	res.Finished = d.opt.Now()
	d.observe(a, run, res.Finished.Sub(res.Started))
	res.Output = hreq.Output()
	if err != nil {
		fill(ctx, &res, err, timeout, deadlineHit)
	}
	return res
}

// abandoned logs and returns the error of a call the watchdog gave up on.
func abandoned(actx *attemptCtx, timeout time.Duration, log *runLog) error {
	log.get().Error("handler ignored its context; abandoned", zap.Duration("timeout", timeout))
	return fmt.Errorf("%w after %s: %w", ErrAbandoned, timeout, actx.Err())
}

// fill classifies the handler's error into the result.
// A failure after the deadline passed is a timeout even when the handler's
// error does not say so (a driver that reports "connection closed").
func fill(ctx context.Context, res *Result, err error, timeout time.Duration, deadlineHit bool) {
	res.TimedOut = ctx.Err() == nil && (deadlineHit || errors.Is(err, context.DeadlineExceeded))
	if res.TimedOut && !errors.Is(err, ErrAbandoned) {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	res.Err = err
	res.Permanent = handler.IsPermanent(err)
	if dl, ok := handler.RetryDelay(err); ok {
		res.RetryAfter = dl
	}
	res.Stack = handler.StackTrace(err)
}

func (d *Dispatcher) observe(a *Action, run *actionRun, took time.Duration) {
	if d.opt.Metrics == nil {
		return
	}
	h := run.hist.Load()
	if h == nil || h.name != a.Name { // first call, or the action was renamed
		h = &namedObserver{name: a.Name, obs: d.opt.Metrics.HandlerDuration.WithLabelValues(d.opt.Group, a.Name)}
		run.hist.Store(h)
	}
	h.obs.Observe(took.Seconds())
}

// rateLimited checks the action's and the subscription's fleet-wide limits
// and returns how long to defer, or 0. A limiter error fails open: a Redis
// hiccup should slow nothing down, and the limit is a courtesy to the
// downstream, not a correctness property.
func (d *Dispatcher) rateLimited(ctx context.Context, a *Action, log *runLog) time.Duration {
	if d.opt.Limiter == nil || a.RateLimitPerMinute <= 0 && a.SubscriptionRateLimitPerMinute <= 0 {
		return 0 // the usual case: no key to build, no round trip
	}
	return d.limitCalls(ctx, a, log)
}

// limitCalls asks the limiter about the action's and the subscription's
// limits that are set.
func (d *Dispatcher) limitCalls(ctx context.Context, a *Action, log *runLog) time.Duration {
	checks := [2]struct {
		limit int
		key   func() string
	}{
		{a.RateLimitPerMinute, func() string { return a.Schema + ":" + a.ID.String() }},
		{a.SubscriptionRateLimitPerMinute, func() string { return a.Schema + ":subscription:" + a.SubscriptionID.String() }},
	}
	for _, c := range checks {
		if c.limit <= 0 {
			continue
		}
		key := c.key()
		ok, wait, err := d.opt.Limiter.Allow(ctx, key, c.limit)
		if err != nil {
			log.get().Warn("rate limiter failed; allowing the call", zap.String("key", key), zap.Error(err))
			continue
		}
		if !ok {
			return max(wait, time.Millisecond)
		}
	}
	return 0
}

// semaphore bounds one action's concurrent calls in this process.
type semaphore struct {
	ch chan struct{}
}

// release gives back the slot acquire took; nil (no bound) does nothing.
func (s *semaphore) release() {
	if s != nil {
		<-s.ch
	}
}

// acquire takes a slot of the action's semaphore, waiting until ctx ends;
// release the semaphore it returns (nil when n <= 0: no bound).
// The semaphore is rebuilt when MaxConcurrent changes; holders of the old
// one release into it, so the change is exact once they finish.
func (d *Dispatcher) acquire(ctx context.Context, run *actionRun, n int) (*semaphore, error) {
	if n <= 0 {
		return nil, nil
	}
	s := run.sem.Load()
	if s == nil || cap(s.ch) != n {
		d.runMu.Lock()
		if s = run.sem.Load(); s == nil || cap(s.ch) != n {
			s = &semaphore{ch: make(chan struct{}, n)}
			run.sem.Store(s)
		}
		d.runMu.Unlock()
	}
	if !chans.Send(ctx, s.ch, struct{}{}) {
		return nil, fmt.Errorf("waiting for a concurrency slot: %w", ctx.Err())
	}
	return s, nil
}
