package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/publisher"
)

// SourceService marks the demo's events.
const SourceService = "neo-events-demo"

// EventType is one kind of event the demo publishes.
type EventType struct {
	Type, Aggregate string
}

// EventTypes are published in turn: users.* reach the webhook, orders.*
// the always-failing export, every one the flaky sync.
var EventTypes = []EventType{
	{"users.created", "user"},
	{"users.updated", "user"},
	{"orders.paid", "order"},
	{"tenants.created", "tenant"},
	{"invoices.issued", "invoice"},
}

// Generate returns n events spread evenly over schemas and EventTypes.
func Generate(n int, schemas []string) ([]*event.Event, error) {
	if n < 0 || len(schemas) == 0 {
		return nil, fmt.Errorf("demo: generate %d events over %d schemas", n, len(schemas))
	}
	evs := make([]*event.Event, 0, n)
	for i := 0; i < n; i++ {
		schema := schemas[i%len(schemas)]
		et := EventTypes[(i/len(schemas))%len(EventTypes)]
		data, _ := json.Marshal(map[string]any{"seq": i, "email": fmt.Sprintf("user%d@example.com", i)})
		e, err := event.New(schema, et.Type, et.Aggregate, uuid.New(), data)
		if err != nil {
			return nil, fmt.Errorf("demo: event %d: %w", i, err)
		}
		e.SourceService = SourceService
		e.CorrelationID = uuid.New()
		if schema == event.AdminSchema {
			e.TenantID = uuid.New()
		}
		evs = append(evs, e)
	}
	return evs, nil
}

// BySchema groups events by schema, keeping their order.
func BySchema(evs []*event.Event) map[string][]*event.Event {
	out := map[string][]*event.Event{}
	for _, e := range evs {
		out[e.Schema] = append(out[e.Schema], e)
	}
	return out
}

// publishBatch is how many events one Publish call carries; the publisher
// group-commits concurrent calls on top.
const publishBatch = 100

// Publish publishes evs in batches of one schema from a few goroutines. It
// returns how many were committed but left to the outbox relay
// (publisher.ErrRelayPending): published, yet late on their streams.
func Publish(ctx context.Context, pub *publisher.Publisher, evs []*event.Event) (relayed int, err error) {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	var late = make(chan int, len(evs)/publishBatch+len(BySchema(evs))+1)
	for schema, list := range BySchema(evs) {
		for start := 0; start < len(list); start += publishBatch {
			batch := list[start:min(start+publishBatch, len(list))]
			g.Go(func() error {
				err := pub.Publish(ctx, schema, batch...)
				if errors.Is(err, publisher.ErrRelayPending) {
					late <- len(batch)
					return nil
				}
				if err != nil {
					return fmt.Errorf("demo: publish %d events to %s: %w", len(batch), schema, err)
				}
				return nil
			})
		}
	}
	err = g.Wait()
	close(late)
	for n := range late {
		relayed += n
	}
	return relayed, err
}
