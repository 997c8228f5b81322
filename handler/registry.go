package handler

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// MaxNameLen bounds a handler name; `actions.handler_class` is text, but a
// name this long is a mistake.
const MaxNameLen = 200

// Registry errors; callers branch on them with errors.Is.
var (
	// ErrDuplicate is returned when a name is registered twice.
	ErrDuplicate = errors.New("handler already registered")
	// ErrInvalidName is returned for an empty or malformed handler name.
	ErrInvalidName = errors.New("invalid handler name")
)

// Middleware wraps a Handler, like net/http middleware: logging, metrics,
// tracing, authorization of an action's config.
type Middleware func(Handler) Handler

// Registry maps handler names (an action's handler_class or action_type) to
// handlers. It is safe for concurrent use; its zero value is ready to use.
type Registry struct {
	mu       sync.RWMutex
	handlers map[string]Handler
	mws      []Middleware
	wrapped  map[string]Handler // Lookup's cache; reset by Register and Use
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register binds name to h. The name must be 1..MaxNameLen characters of
// [a-zA-Z0-9_.:-]; registering a name twice returns ErrDuplicate.
func (r *Registry) Register(name string, h Handler) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("register handler %q: handler is nil", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.handlers[name]; ok {
		return fmt.Errorf("register handler %q: %w", name, ErrDuplicate)
	}
	if r.handlers == nil {
		r.handlers = make(map[string]Handler)
	}
	r.handlers[name] = h
	r.wrapped = nil
	return nil
}

// MustRegister is Register for program start-up; it panics on error, since
// a worker binary with a clashing or malformed handler name is a bug.
func (r *Registry) MustRegister(name string, h Handler) {
	if err := r.Register(name, h); err != nil {
		panic(err)
	}
}

// Use appends middleware. The first middleware given to Use is the
// outermost: it sees the request first and the error last. It applies to
// every handler, including those registered before the call. Nil
// middleware is skipped.
func (r *Registry) Use(mw ...Middleware) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range mw {
		if m != nil {
			r.mws = append(r.mws, m)
		}
	}
	r.wrapped = nil
}

// Lookup returns the handler registered under name, wrapped in the
// middleware chain. The chain is built once per name and cached until the
// next Register or Use.
func (r *Registry) Lookup(name string) (Handler, bool) {
	r.mu.RLock()
	h, cached := r.wrapped[name]
	base, ok := r.handlers[name]
	mws := r.mws
	r.mu.RUnlock()
	if cached || !ok {
		return h, cached
	}
	// Built outside the lock: a middleware constructor may call the registry.
	h = base
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mws) == len(mws) { // no Use since the snapshot
		if r.wrapped == nil {
			r.wrapped = make(map[string]Handler)
		}
		r.wrapped[name] = h
	}
	return h, true
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.handlers))
	for n := range r.handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ValidateName checks a handler name: 1..MaxNameLen characters of
// [a-zA-Z0-9_.:-]. The error wraps ErrInvalidName.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidName, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return fmt.Errorf("%w: %q may contain only a-z, A-Z, 0-9, '_', '.', ':' and '-'", ErrInvalidName, name)
		}
	}
	return nil
}

func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-'
}
