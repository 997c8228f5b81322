// Package logging builds the zap loggers of neo-events: JSON for production,
// a coloured console for `make demo` and humans. Log fields that every
// component uses are named here so they stay consistent across packages.
package logging

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Field names shared by every component's logs.
const (
	KeyEventID       = "event_id"
	KeyCorrelationID = "correlation_id"
	KeyEventType     = "event_type"
	KeySchema        = "schema"
	KeyAction        = "action"
	KeyAttempt       = "attempt"
	KeyStream        = "stream"
	KeyEntryID       = "entry_id"
)

// New returns a logger at level ("debug", "info", "warn", "error") in format
// ("json" or "console").
func New(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.TimeKey = "ts"
		cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		cfg.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	log, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return log, nil
}

// Err is zap.Error, here so callers need one import for log fields.
func Err(err error) zap.Field { return zap.Error(err) }
