package handler

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// ErrPermanent marks a failure that retrying cannot fix: the worker records
// the attempt as failed and dead-letters the event for this action at once.
// Test with errors.Is(err, ErrPermanent) or IsPermanent(err).
var ErrPermanent = errors.New("permanent failure")

// ErrNoHandler is returned by Call when it is given no handler or no request.
var ErrNoHandler = errors.New("no handler")

// Permanent marks err as not worth retrying. errors.Is and errors.As still
// reach err. A nil err still yields a permanent failure: a handler that
// writes `return handler.Permanent(err)` means to fail.
func Permanent(err error) error {
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string {
	if e.err == nil {
		return ErrPermanent.Error()
	}
	return "permanent: " + e.err.Error()
}

// Unwrap returns both the sentinel and the cause, so errors.Is matches either.
func (e *permanentError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrPermanent}
	}
	return []error{ErrPermanent, e.err}
}

// IsPermanent reports whether err, or an error it wraps, was made by Permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// RetryAfter fails the attempt and asks for the next one after d instead of
// the policy's backoff (an HTTP 429 or 503 with Retry-After, a rate limit).
// The retry budget still applies, and the worker caps d (see the retry
// policy). A negative d is taken as zero. errors.Is and errors.As still
// reach err. Permanent wins over RetryAfter when an error carries both.
func RetryAfter(d time.Duration, err error) error {
	return &retryAfterError{delay: max(d, 0), err: err}
}

type retryAfterError struct {
	delay time.Duration
	err   error
}

func (e *retryAfterError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("retry after %s", e.delay)
	}
	return fmt.Sprintf("%v (retry after %s)", e.err, e.delay)
}

func (e *retryAfterError) Unwrap() error { return e.err }

// RetryDelay returns the delay a RetryAfter in err's chain asked for.
func RetryDelay(err error) (time.Duration, bool) {
	var ra *retryAfterError
	if !errors.As(err, &ra) {
		return 0, false
	}
	return ra.delay, true
}

// PanicError is what Call returns when the handler panics. It is retried
// like any other error unless the panic value is itself a Permanent error.
type PanicError struct {
	// Value is what the handler passed to panic.
	Value any
	// Location is the file:line that panicked, when it could be found.
	Location string
	// Stack is the goroutine's stack at recovery (debug.Stack), for
	// `action_executions.error_stack_trace`.
	Stack string
}

func (e *PanicError) Error() string {
	if e.Location == "" {
		return fmt.Sprintf("handler panic: %v", e.Value)
	}
	return fmt.Sprintf("handler panic at %s: %v", e.Location, e.Value)
}

// Unwrap returns the panic value when it is an error, so errors.Is sees it.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// StackTrace returns the stack of a PanicError in err's chain, or "".
func StackTrace(err error) string {
	var pe *PanicError
	if errors.As(err, &pe) {
		return pe.Stack
	}
	return ""
}

// Call runs h exactly as the worker does: under a context deadline of
// req.Timeout(), with a panic turned into a *PanicError. It returns h's
// error unchanged otherwise. A nil h or req yields an error wrapping
// ErrNoHandler, marked Permanent: retrying cannot conjure a handler.
func Call(ctx context.Context, h Handler, req *Request) (err error) {
	if h == nil || req == nil {
		return Permanent(fmt.Errorf("%w: handler %v, request %v", ErrNoHandler, h != nil, req != nil))
	}
	ctx, cancel := withTimeout(ctx, req.Timeout())
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Location: panicLocation(), Stack: string(debug.Stack())}
		}
	}()
	return h.Handle(ctx, req)
}

// withTimeout is context.WithTimeout, except that a ctx whose deadline
// comes first is used as it is: the worker's dispatcher has already set the
// attempt's deadline, and deriving another cancelable context for every
// call is measurable at the worker's rates.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && !dl.After(time.Now().Add(d)) {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// panicLocation finds the first frame outside the runtime below the
// deferred recover: the line that panicked.
func panicLocation() string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if f.Function != "" && !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return ""
		}
	}
}
