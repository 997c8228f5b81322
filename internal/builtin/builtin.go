// Package builtin registers the handlers every neo-events worker has:
// `webhook` (signed HTTP POST, DESIGN §3) and `noop` (does nothing; for
// smoke tests and benchmarks).
package builtin

import (
	"context"
	"errors"
	"fmt"

	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/webhook"
)

// Noop is the name of the handler that succeeds at once.
const Noop = "noop"

// Register adds the built-in handlers to reg, skipping a name the binary
// already registered itself.
func Register(reg *handler.Registry) error {
	for name, h := range map[string]handler.Handler{
		webhook.Name: webhook.New(webhook.Options{}),
		Noop:         handler.HandlerFunc(func(context.Context, *handler.Request) error { return nil }),
	} {
		if _, ok := reg.Lookup(name); ok {
			continue
		}
		if err := reg.Register(name, h); err != nil && !errors.Is(err, handler.ErrDuplicate) {
			return fmt.Errorf("register built-in handler %s: %w", name, err)
		}
	}
	return nil
}
