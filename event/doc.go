// Package event is the neo-events event model: the Go form of a row of
// `<schema>.events`, its identifiers, validation rules, status and priority
// enums, type patterns, request metadata, and the flat Redis Stream entry that
// carries an event between publishers and workers (DESIGN §1–§2).
//
// The package is pure: it imports no Redis or Postgres client, so producers,
// workers and tests share one definition of what an event is.
//
// Conventions that make every field survive Go → Postgres → Go and
// Go → stream entry → Go unchanged:
//   - optional UUIDs use the zero UUID (uuid.Nil) for NULL;
//   - optional strings use "" for NULL;
//   - optional timestamps use the zero time.Time for NULL;
//   - timestamps are UTC and truncated to microseconds, the precision of
//     PostgreSQL's timestamptz (New and Normalize do this).
package event
