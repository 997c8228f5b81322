package dispatch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// halfOpenWait is how long a call waits while another call is the half-open
// trial: long enough not to spin, short enough to follow the trial closely.
const halfOpenWait = time.Second

// maxHealthError bounds what goes into actions.health_check_error.
const maxHealthError = 1000

type breakerState int

const (
	stateClosed breakerState = iota
	stateOpen
	stateHalfOpen
)

// outcome is what a call tells the breaker.
type outcome int

const (
	outcomeSuccess outcome = iota
	outcomeFailure
	// outcomeNeutral: the call says nothing about the action's health (a
	// permanent error is about the event; a cancelled context, about us).
	outcomeNeutral
)

// transition is a state change the dispatcher must report.
type transition int

const (
	noTransition transition = iota
	toOpen                  // closed -> open, or a failed trial -> open again
	toClosed
)

// breaker is one action's circuit breaker in this process. Closed, it
// counts consecutive failures; at the threshold it opens and defers every
// call for the cooldown; then one trial call runs (half-open): success
// closes it, failure opens it for another cooldown.
//
// Nearly every call finds it closed without failures; two atomic mirrors
// of the state let such calls pass without taking its lock, which every
// worker goroutine running that action would otherwise contend for.
type breaker struct {
	mu        sync.Mutex
	state     breakerState
	failures  int
	openUntil time.Time
	trial     bool // a half-open trial is running

	closed atomic.Bool // state == stateClosed
	clean  atomic.Bool // closed, and no failure since the last success
}

// newBreaker returns a closed breaker.
func newBreaker() *breaker {
	b := &breaker{}
	b.mirror()
	return b
}

// mirror updates the atomic mirrors; call it with mu held after a change.
func (b *breaker) mirror() {
	b.closed.Store(b.state == stateClosed)
	b.clean.Store(b.state == stateClosed && b.failures == 0)
}

// admit decides whether a call may run now. trial marks the half-open trial,
// which the caller must settle with record or release.
// now is called only when the breaker is not closed.
func (b *breaker) admit(now func() time.Time) (wait time.Duration, trial, ok bool) {
	if b.closed.Load() {
		return 0, false, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.mirror()
	switch b.state {
	case stateOpen:
		if t := now(); t.Before(b.openUntil) {
			return b.openUntil.Sub(t), false, false
		}
		b.state = stateHalfOpen
		fallthrough
	case stateHalfOpen:
		if b.trial {
			return halfOpenWait, false, false
		}
		b.trial = true
		return 0, true, true
	}
	return 0, false, true
}

// release gives back a trial that never reached the handler.
func (b *breaker) release(trial bool) {
	if !trial {
		return
	}
	b.mu.Lock()
	b.trial = false
	b.mu.Unlock()
}

func (b *breaker) record(o outcome, trial bool, now time.Time, threshold int, cooldown time.Duration) transition {
	if !trial && (o == outcomeNeutral || o == outcomeSuccess && b.clean.Load()) {
		return noTransition // nothing would change
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.mirror()
	if trial {
		b.trial = false
	}
	switch o {
	case outcomeSuccess:
		b.failures = 0
		if b.state == stateClosed {
			return noTransition
		}
		b.state = stateClosed
		return toClosed
	case outcomeFailure:
		b.failures++
		if b.state == stateHalfOpen && trial || b.state == stateClosed && b.failures >= threshold {
			b.state = stateOpen
			b.openUntil = now.Add(cooldown)
			return toOpen
		}
	}
	return noTransition
}

// actionRun is what Run keeps per action in this process: its breaker,
// its concurrency semaphore and its handler-duration histogram, found with
// one read-locked lookup per call.
type actionRun struct {
	br   *breaker
	sem  atomic.Pointer[semaphore] // nil until a bound is needed; replaced when MaxConcurrent changes
	hist atomic.Pointer[namedObserver]
}

// namedObserver is the histogram child of one action name.
type namedObserver struct {
	name string
	obs  prometheus.Observer
}

// runFor returns the action's run state, creating it (breaker closed).
func (d *Dispatcher) runFor(k actionKey) *actionRun {
	d.runMu.RLock()
	r := d.runs[k]
	d.runMu.RUnlock()
	if r != nil {
		return r
	}
	d.runMu.Lock()
	defer d.runMu.Unlock()
	if r = d.runs[k]; r == nil {
		r = &actionRun{br: newBreaker()}
		d.runs[k] = r
	}
	return r
}

// reportTransition records the breaker change in Postgres (best effort) and
// in the action_circuit_open gauge.
func (d *Dispatcher) reportTransition(ctx context.Context, a *Action, t transition, cause error, rl *runLog) {
	if t == noTransition {
		return
	}
	open := t == toOpen
	log := rl.get()
	if d.opt.Metrics != nil {
		v := 0.0
		if open {
			v = 1
		}
		d.opt.Metrics.ActionCircuitOpen.WithLabelValues(d.opt.Group, a.Name).Set(v)
	}
	errText := ""
	if open {
		if cause != nil {
			errText = cause.Error()
		}
		if len(errText) > maxHealthError {
			errText = errText[:maxHealthError]
		}
		log.Warn("action circuit opened", zap.Duration("cooldown", d.opt.BreakerCooldown), zap.Error(cause))
	} else {
		log.Info("action circuit closed")
	}
	if d.opt.Health == nil {
		return
	}
	// The attempt's own context may be about to end; the health write should not.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.opt.Health.SetHealth(hctx, a.Schema, a.ID, !open, errText); err != nil {
		log.Warn("recording action health failed", zap.Error(err))
	}
}
