package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/streaminfo"
	"github.com/neo-events/neo-events/publisher"
)

// RunOptions configure Run.
type RunOptions struct {
	Pool  *pgxpool.Pool
	Redis redis.UniversalClient
	// Prefix, Group and Partitions must be the workers' streams.prefix,
	// worker.group and streams.partitions.
	Prefix     string
	Group      string
	Partitions int
	// Events is how many events to publish.
	Events int
	// Timeout bounds the wait for every event to be final.
	Timeout time.Duration
	// Progress receives a line per second while waiting; nil discards them.
	Progress io.Writer
}

// drainWait bounds the wait, once every event is final, for the group's
// last acknowledgements and dead letters (written just after the status).
const drainWait = 5 * time.Second

// Run starts the webhook receiver Setup configured, publishes opt.Events
// events with the real publisher, waits until each is final in PostgreSQL
// (or opt.Timeout passes) and returns what happened. The error is about
// the run itself (connections, setup); Summary.Err says whether the
// pipeline lost or mis-signed anything.
func Run(ctx context.Context, opt RunOptions) (*Summary, error) {
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	wh, err := LoadWebhook(ctx, opt.Pool)
	if err != nil {
		return nil, err
	}
	recv, stop, err := startReceiver(wh)
	if err != nil {
		return nil, err
	}
	defer func() { _ = stop(context.WithoutCancel(ctx)) }()

	evs, err := Generate(opt.Events, Schemas())
	if err != nil {
		return nil, err
	}
	s := &Summary{Prefix: opt.Prefix, Group: opt.Group, Published: len(evs), Expect: expect(evs)}
	start := time.Now()
	if s.Relayed, err = publish(ctx, opt, evs); err != nil {
		return nil, err
	}
	s.PublishTime = time.Since(start)
	bySchema := BySchema(evs)
	if s.Progress, err = wait(ctx, opt, bySchema, start); err != nil {
		return nil, err
	}
	s.WaitTime = time.Since(start)
	s.Webhook = recv.Stats()
	return s, s.collect(ctx, opt, bySchema)
}

func startReceiver(wh Webhook) (*Receiver, func(context.Context) error, error) {
	addr, err := wh.Addr()
	if err != nil {
		return nil, nil, err
	}
	recv, err := NewReceiver(wh.Secret)
	if err != nil {
		return nil, nil, err
	}
	stop, err := recv.Serve(addr)
	if err != nil {
		return nil, nil, err
	}
	return recv, stop, nil
}

func publish(ctx context.Context, opt RunOptions, evs []*event.Event) (int, error) {
	pub, err := publisher.New(opt.Pool, opt.Redis, publisher.Options{Prefix: opt.Prefix, Partitions: opt.Partitions})
	if err != nil {
		return 0, fmt.Errorf("demo: %w", err)
	}
	relayed, err := Publish(ctx, pub, evs)
	return relayed, errors.Join(err, pub.Close())
}

// wait polls the events' statuses once a second until all are final or the
// timeout passes, printing progress.
func wait(ctx context.Context, opt RunOptions, bySchema map[string][]*event.Event, start time.Time) (Progress, error) {
	deadline := time.Now().Add(opt.Timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		p, err := Track(ctx, opt.Pool, bySchema)
		if err != nil {
			return p, err
		}
		if p.Done() || time.Now().After(deadline) {
			return p, nil
		}
		backlog := "?"
		if infos, err := streaminfo.Inspect(ctx, opt.Redis, opt.Prefix); err == nil {
			backlog = fmt.Sprint(streaminfo.GroupBacklog(infos, opt.Group))
		}
		fmt.Fprintf(opt.Progress, "  %5.1fs  final %d/%d (completed %d, failed %d, retrying %d), group backlog %s\n",
			time.Since(start).Seconds(), p.Final(), p.Published, p.ByStatus[event.StatusCompleted],
			p.ByStatus[event.StatusFailed], p.ByStatus[event.StatusRetrying], backlog)
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-tick.C:
		}
	}
}

// collect fills in the totals once the wait is over. The group's last
// acknowledgements and dead letters follow the final status by a moment,
// so it gives them drainWait to settle.
func (s *Summary) collect(ctx context.Context, opt RunOptions, bySchema map[string][]*event.Event) error {
	deadline := time.Now().Add(drainWait)
	for {
		infos, err := streaminfo.Inspect(ctx, opt.Redis, opt.Prefix)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		s.Streams, s.Backlog = infos, streaminfo.GroupBacklog(infos, opt.Group)
		if s.Backlog == 0 || !s.Progress.Done() || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var err error
	if s.Schemas, err = CountSchemas(ctx, opt.Pool, Schemas()); err != nil {
		return err
	}
	if s.DLQTotal, s.DLQ, err = CountDLQ(ctx, opt.Redis, opt.Prefix, opt.Group); err != nil {
		return err
	}
	if s.Progress.Done() {
		return nil
	}
	if s.Unhealthy, err = UnhealthyActions(ctx, opt.Pool, Schemas()); err != nil {
		return err
	}
	s.Unfinished, err = NotFinal(ctx, opt.Pool, bySchema, 5)
	return err
}
