// Package store is the PostgreSQL side of neo-events: the migrations that
// build (or leave alone) the platform's schemas, tenant schema creation, and
// the repository of `<schema>.events` rows plus the publisher's outbox
// (DESIGN §1, §3).
//
// Every function takes a DB, which *pgxpool.Pool, *pgx.Conn and pgx.Tx all
// satisfy, so a caller decides the transaction boundaries. Every schema name
// is checked with event.ValidateSchema before it is quoted into SQL text;
// a bad one is refused with an error that wraps event.ErrInvalidSchema.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/neo-events/neo-events/event"
)

// DB is what the repository needs from a connection: *pgxpool.Pool,
// *pgx.Conn and pgx.Tx satisfy it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

var (
	_ DB = (*pgxpool.Pool)(nil)
	_ DB = (*pgx.Conn)(nil)
	_ DB = (pgx.Tx)(nil)
)

// Sentinel errors; callers branch on them with errors.Is.
var (
	// ErrNotFound: no row with that id.
	ErrNotFound = errors.New("not found")
	// ErrTenantExists: CreateTenant was asked for a schema that already exists.
	ErrTenantExists = errors.New("tenant already exists")
	// ErrInvalidCursor: ListEvents got a cursor it did not issue.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrInvalidArgument: a filter, status update or other argument is malformed.
	ErrInvalidArgument = errors.New("invalid argument")
)

// eventsTable returns the quoted `<schema>.events` after validating schema.
func eventsTable(schema string) (string, error) {
	if err := event.ValidateSchema(schema); err != nil {
		return "", err
	}
	return event.QuoteIdent(schema) + ".events", nil
}

func invalidArg(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}
