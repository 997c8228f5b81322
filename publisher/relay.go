package publisher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
)

// relayLockKey is the advisory lock that lets one relay pass run at a time
// across every process sharing the database.
const relayLockKey int64 = 0x6e656f5f72656c61 // "neo_rela"

// DefaultRelayBatches bounds the outbox batches one relay pass takes.
const DefaultRelayBatches = 100

// Relay runs one pass of the outbox relay: every outbox batch older than
// minAge (a batch whose publisher committed but never confirmed its XADD)
// is put on its streams again and its outbox row deleted. Events that a
// worker has already processed are skipped; the others may reach a stream
// twice, which consumers tolerate. It returns the number of events relayed.
// Only one pass runs at a time across the fleet; a concurrent call returns 0.
func (p *Publisher) Relay(ctx context.Context, minAge time.Duration) (int, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("relay: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	var locked bool
	if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", relayLockKey).Scan(&locked); err != nil {
		return 0, fmt.Errorf("relay: lock: %w", err)
	}
	if !locked {
		return 0, nil
	}
	batches, err := store.PendingOutbox(ctx, tx, minAge, DefaultRelayBatches)
	if err != nil {
		return 0, fmt.Errorf("relay: list outbox: %w", err)
	}
	relayed := 0
	for _, b := range batches {
		evs, err := store.GetEvents(ctx, tx, b.Schema, b.EventIDs)
		if err != nil {
			return relayed, fmt.Errorf("relay: load batch %s of %s: %w", b.BatchID, b.Schema, err)
		}
		todo := evs[:0]
		for _, e := range evs {
			if e.Status == event.StatusPending {
				e.Schema = b.Schema
				p.prepare(e)
				todo = append(todo, e)
			}
		}
		if len(todo) > 0 {
			n, err := addToStreams(ctx, p.rdb, p.opt.Prefix, p.opt.Notify, todo, nil, nil)
			if err != nil {
				return relayed, fmt.Errorf("relay: batch %s: %w", b.BatchID, err)
			}
			relayed += n
		}
		if err := store.DeleteOutbox(ctx, tx, []uuid.UUID{b.BatchID}); err != nil {
			return relayed, fmt.Errorf("relay: delete batch %s: %w", b.BatchID, err)
		}
		p.log.Info("outbox relay re-published a batch",
			zap.String("schema", b.Schema), zap.Stringer("batch_id", b.BatchID),
			zap.Int("events", len(todo)), zap.Time("committed_at", b.CreatedAt))
	}
	if err := tx.Commit(ctx); err != nil {
		return relayed, fmt.Errorf("relay: commit: %w", err)
	}
	p.m.OutboxRelayed.Add(float64(relayed))
	return relayed, nil
}

// RunRelay runs Relay every interval until ctx ends. Errors are logged and
// retried at the next tick.
func (p *Publisher) RunRelay(ctx context.Context, interval, minAge time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := p.Relay(ctx, minAge)
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			p.log.Warn("outbox relay pass failed; will retry", zap.Error(err))
		case n > 0:
			p.log.Info("outbox relay pass", zap.Int("relayed", n))
		}
	}
}
