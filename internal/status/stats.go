package status

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/internal/store"
)

// DefaultStatsInterval is how often action statistics are added to the
// `actions` rows.
const DefaultStatsInterval = time.Second

// statsBuffer sums action statistics between two writes to `actions`.
//
// Adding them in the status transaction would lock each action's row until
// that transaction commits, and every worker's flush touches the same few
// rows: the fleet's status writes would queue behind one another. Summed
// here and written once per interval, the row locks are short and rare.
// The price: a crash loses at most one interval of statistics (never an
// execution row, never a status).
type statsBuffer struct {
	mu  sync.Mutex
	sum map[string]map[uuid.UUID]store.ActionStats // schema -> action -> sums
}

func (b *statsBuffer) add(plans []*plan) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range plans {
		for _, list := range [][]store.ActionStats{p.counted, p.stats} {
			for _, s := range list {
				b.addOne(p.schema, s)
			}
		}
	}
}

// addOne needs b.mu.
func (b *statsBuffer) addOne(schema string, s store.ActionStats) {
	if b.sum == nil {
		b.sum = map[string]map[uuid.UUID]store.ActionStats{}
	}
	m := b.sum[schema]
	if m == nil {
		m = map[uuid.UUID]store.ActionStats{}
		b.sum[schema] = m
	}
	t := m[s.ActionID]
	t.ActionID = s.ActionID
	t.Total += s.Total
	t.Successful += s.Successful
	t.Failed += s.Failed
	t.SumDurationMS += s.SumDurationMS
	m[s.ActionID] = t
}

func (b *statsBuffer) take() map[string]map[uuid.UUID]store.ActionStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sum
	b.sum = nil
	return s
}

// putBack returns sums that could not be written, to be tried again.
func (b *statsBuffer) putBack(schema string, m map[uuid.UUID]store.ActionStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range m {
		b.addOne(schema, s)
	}
}

// writeStats adds the buffered statistics to `actions`, one statement per
// schema in schema order (so concurrent workers lock rows in one order).
// Sums that fail for a passing reason are kept for the next interval.
func (w *Writer) writeStats(ctx context.Context) {
	sums := w.stats.take()
	schemas := make([]string, 0, len(sums))
	for s := range sums {
		schemas = append(schemas, s)
	}
	sort.Strings(schemas)
	for _, schema := range schemas {
		m := sums[schema]
		list := make([]store.ActionStats, 0, len(m))
		for _, s := range m {
			list = append(list, s)
		}
		sctx, cancel := context.WithTimeout(ctx, flushTimeout)
		err := store.AddActionStats(sctx, w.pool, schema, list)
		cancel()
		if err == nil {
			continue
		}
		if rejected(err) {
			w.log.Error("action statistics refused by PostgreSQL; dropped", zap.String("schema", schema), zap.Error(err))
			continue
		}
		w.log.Warn("action statistics not written; will retry", zap.String("schema", schema), zap.Error(err))
		w.stats.putBack(schema, m)
	}
}

// statsLoop writes the statistics every interval until stop, then once more.
func (w *Writer) statsLoop() {
	defer close(w.statsDone)
	t := time.NewTicker(w.opt.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.writeStats(w.ctx)
		case <-w.done:
			// The flushers have finished: write what they left.
			w.writeStats(w.ctx)
			return
		}
	}
}
