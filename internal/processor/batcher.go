package processor

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// batcher sends the small Redis writes of many concurrent events (done
// markers, finalize scripts) in shared pipelines: one round trip for
// everything queued while the previous pipeline was in flight. Each caller
// still learns its own commands' result.
type batcher struct {
	rdb redis.UniversalClient
	ops chan *op
	max int
}

type op struct {
	fill func(pipe redis.Pipeliner)
	done chan error
}

func newBatcher(rdb redis.UniversalClient, max int) *batcher {
	return &batcher{rdb: rdb, ops: make(chan *op, 4*max), max: max}
}

// do queues fill's commands and waits for their pipeline. ctx bounds the
// wait to enter the queue; once sent, the result is awaited, since the
// caller must know whether its acknowledgement happened.
func (b *batcher) do(ctx context.Context, fill func(pipe redis.Pipeliner)) error {
	o := &op{fill: fill, done: make(chan error, 1)}
	select {
	case b.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-o.done
}

// run serves the queue until stop is closed and the queue is empty.
func (b *batcher) run(stop <-chan struct{}) {
	for {
		var first *op
		select {
		case first = <-b.ops:
		case <-stop:
			for {
				select {
				case o := <-b.ops:
					b.exec([]*op{o})
				default:
					return
				}
			}
		}
		batch := []*op{first}
	gather:
		for len(batch) < b.max {
			select {
			case o := <-b.ops:
				batch = append(batch, o)
			default:
				break gather
			}
		}
		b.exec(batch)
	}
}

func (b *batcher) exec(batch []*op) {
	pipe := b.rdb.Pipeline()
	bounds := make([]int, len(batch)+1)
	for i, o := range batch {
		o.fill(pipe)
		bounds[i+1] = pipe.Len()
	}
	// A background context: results must come back even while shutting
	// down, or callers would not know whether they acknowledged.
	cmds, execErr := pipe.Exec(context.Background())
	for i, o := range batch {
		if len(cmds) < bounds[i+1] {
			o.done <- fmt.Errorf("redis pipeline: %w", execErr)
			continue
		}
		var err error
		for _, c := range cmds[bounds[i]:bounds[i+1]] {
			if e := c.Err(); e != nil && e != redis.Nil {
				err = fmt.Errorf("%s: %w", c.Name(), e)
				break
			}
		}
		o.done <- err
	}
}
