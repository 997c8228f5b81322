package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/publisher"
)

// eventTypes spread the load over two categories, so two sets of streams.
var eventTypes = []string{"users.created", "orders.placed"}

// generator makes the bench's events: valid, with a padded payload and
// created_at set to the intended send time, so the workers' created →
// done latency includes any time the event waited to be sent.
type generator struct {
	schemas []string
	payload json.RawMessage
	ids     idSource
}

func newGenerator(schemas []string, payloadBytes int) *generator {
	const head = `{"bench":true,"pad":""}`
	pad := strings.Repeat("x", max(payloadBytes-len(head), 0))
	return &generator{
		schemas: schemas,
		payload: json.RawMessage(`{"bench":true,"pad":"` + pad + `"}`),
		ids:     idSource{r: bufio.NewReaderSize(rand.Reader, 4096)},
	}
}

// idSource makes the aggregate ids (random UUIDv4, as uuid.New) from
// crypto/rand read 4 KiB at a time: a crypto/rand call per event was a
// few % of the generator's CPU in redis-only profiles.
type idSource struct {
	mu sync.Mutex
	r  *bufio.Reader
}

func (s *idSource) next() (uuid.UUID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := uuid.NewRandomFromReader(s.r)
	if err != nil {
		return uuid.Nil, fmt.Errorf("aggregate id: %w", err)
	}
	return id, nil
}

func (g *generator) schema(slot int64) string { return g.schemas[slot%int64(len(g.schemas))] }

func (g *generator) make(slot int64, schema string, intended time.Time) (*event.Event, error) {
	aggregateID, err := g.ids.next()
	if err != nil {
		return nil, fmt.Errorf("make event: %w", err)
	}
	e, err := event.New(schema, eventTypes[slot%int64(len(eventTypes))], "user", aggregateID, g.payload)
	if err != nil {
		return nil, fmt.Errorf("make event: %w", err)
	}
	e.CreatedAt = event.Normalize(intended)
	e.UpdatedAt, e.ScheduledAt = e.CreatedAt, e.CreatedAt
	return e, nil
}

// sink delivers one batch of one schema's events.
type sink func(ctx context.Context, schema string, evs []*event.Event) error

// load is what the driver measured.
type load struct {
	published atomic.Int64
	errors    atomic.Int64
	latency   Histogram
	// lag is how late the generator started each open-loop batch after
	// its due time (scheduling, timer slack, CPU starvation). It is part
	// of latency, which counts from the intended time; a large lag means
	// the machine, not the system under test, is behind.
	lag      Histogram
	start    time.Time
	end      time.Time
	firstErr atomic.Value // error
}

func (l *load) elapsed() time.Duration { return l.end.Sub(l.start) }

// drive runs cfg.Publishers goroutines that claim slots, wait for their
// intended send time (open loop) and hand each batch to send, until
// cfg.Events slots are taken or cfg.Duration has passed.
func drive(ctx context.Context, cfg Config, gen *generator, send sink, l *load) {
	l.start = time.Now()
	deadline := l.start.Add(cfg.Duration)
	var next atomic.Int64
	var wg sync.WaitGroup
	for p := 0; p < cfg.Publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				slot := next.Add(int64(cfg.Batch)) - int64(cfg.Batch)
				n, intended, ok := claim(cfg, l.start, deadline, slot)
				if !ok {
					return
				}
				if !sleepUntil(ctx, intended) {
					return
				}
				l.send(ctx, cfg, gen, send, slot, n, intended)
			}
		}()
	}
	wg.Wait()
	l.end = time.Now()
}

// claim says how many events slot starts and when the batch is due: the
// intended time of its last event (open loop), or now (closed loop).
func claim(cfg Config, start, deadline time.Time, slot int64) (int, time.Time, bool) {
	n := int64(cfg.Batch)
	if cfg.Events > 0 {
		if slot >= int64(cfg.Events) {
			return 0, time.Time{}, false
		}
		n = min(n, int64(cfg.Events)-slot)
	}
	if cfg.Rate <= 0 {
		now := time.Now()
		return int(n), now, cfg.Events > 0 || now.Before(deadline)
	}
	due := start.Add(time.Duration(float64(slot+n-1) / cfg.Rate * float64(time.Second)))
	return int(n), due, cfg.Events > 0 || due.Before(deadline)
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (l *load) send(ctx context.Context, cfg Config, gen *generator, send sink, slot int64, n int, due time.Time) {
	if cfg.Rate > 0 {
		l.lag.Record(time.Since(due))
	}
	schema := gen.schema(slot)
	evs := make([]*event.Event, n)
	intended := make([]time.Time, n)
	for i := range evs {
		intended[i] = due
		if cfg.Rate > 0 {
			intended[i] = l.start.Add(time.Duration(float64(slot+int64(i)) / cfg.Rate * float64(time.Second)))
		}
		e, err := gen.make(slot+int64(i), schema, intended[i])
		if err != nil {
			l.fail(int64(n), err)
			return
		}
		evs[i] = e
	}
	if err := send(ctx, schema, evs); err != nil {
		l.fail(int64(n), err)
		return
	}
	done := time.Now()
	for _, t := range intended {
		l.latency.Record(done.Sub(t))
	}
	l.published.Add(int64(n))
}

func (l *load) fail(n int64, err error) {
	l.errors.Add(n)
	l.firstErr.CompareAndSwap(nil, err)
}

// xadder puts events on their streams with the publisher's own transport
// (publisher.AddToStreams), without Postgres.
type xadder struct {
	rdb        *redis.Client
	prefix     string
	partitions int
}

func (x xadder) add(ctx context.Context, evs []*event.Event) error {
	_, err := publisher.AddToStreams(ctx, x.rdb, publisher.Options{Prefix: x.prefix, Partitions: x.partitions}, evs...)
	return err
}
