package publisher

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/streams"
)

// registryRefresh is how long this process trusts that a stream key it has
// added to the registry set is still there. After it, each key is sent
// again with its next batch, so a Redis that lost its data relearns every
// stream in use within this time.
const registryRefresh = 10 * time.Second

// registry remembers the stream keys this process added to the registry set
// recently, so the SADD goes only with batches that bring a new key (or
// with the first batch after a refresh), not with every batch.
type registry struct {
	mu    sync.Mutex
	known map[string]struct{}
	since time.Time
	now   func() time.Time
}

func newRegistry() *registry {
	return &registry{known: map[string]struct{}{}, now: time.Now}
}

// missing returns the keys of keys to send, forgetting everything first
// when the refresh interval has passed. A nil registry sends every key.
func (r *registry) missing(keys []any) []any {
	if r == nil {
		return keys
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.since) >= registryRefresh {
		clear(r.known)
		r.since = now
	}
	var out []any
	for _, k := range keys {
		if _, ok := r.known[k.(string)]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// learned records keys once their SADD succeeded.
func (r *registry) learned(keys []any) {
	if r == nil || len(keys) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.known[k.(string)] = struct{}{}
	}
}

// streamKey is one stream key boxed once for the XADD arguments, and the
// pipeline that last listed it among its distinct keys.
type streamKey struct {
	arg any
	gen uint64
}

// maxCachedKeys bounds entryBatch.keys; past it the cache starts over.
const maxCachedKeys = 4096

// entryBatch is reusable scratch space for one XADD pipeline: every
// entry's fields and every command's arguments live in two slices reused
// from batch to batch, and the arguments point into the fields (*string)
// rather than boxing each string, which cost an allocation per field.
// One entryBatch serves one goroutine at a time.
type entryBatch struct {
	fields []string
	args   []any
	cmds   []*redis.Cmd
	starts []int // where each event's fields start in fields
	keys   map[string]*streamKey
	gen    uint64
	dist   []any // this batch's distinct stream keys
}

var (
	argXAdd any = "xadd"
	argAuto any = "*"
)

// reset drops the references the last batch left, so a reused batch does
// not keep events alive. b.args needs no clearing: it points only into
// b.fields and at the cached stream keys, which the batch keeps anyway.
func (b *entryBatch) reset() {
	clear(b.fields)
	clear(b.cmds)
	b.fields, b.args, b.cmds, b.dist = b.fields[:0], b.args[:0], b.cmds[:0], b.dist[:0]
}

// key returns the boxed key and whether this batch sees it for the first time.
func (b *entryBatch) key(k string) (any, bool) {
	if b.keys == nil || len(b.keys) > maxCachedKeys {
		b.keys = make(map[string]*streamKey, 16)
	}
	sk, ok := b.keys[k]
	if !ok {
		sk = &streamKey{arg: k}
		b.keys[k] = sk
	}
	if sk.gen == b.gen {
		return sk.arg, false
	}
	sk.gen = b.gen
	return sk.arg, true
}

// addToStreams XADDs evs in one pipeline, adds their stream keys to the
// registry set when reg says they are missing (nil reg: always), optionally
// notifies, and sets each event's MessageID. It returns how many entries
// were added. b is scratch space (nil: a fresh one).
func addToStreams(ctx context.Context, rdb redis.UniversalClient, prefix string, notify bool, evs []*event.Event, reg *registry, b *entryBatch) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	if b == nil {
		b = &entryBatch{}
	}
	defer b.reset()
	b.gen++
	// Encode every entry first: the argument lists point into b.fields,
	// which must not grow (move) once they do.
	b.starts = b.starts[:0]
	for _, e := range evs {
		b.starts = append(b.starts, len(b.fields))
		var err error
		if b.fields, err = e.AppendEntry(b.fields); err != nil {
			return 0, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
	}
	b.starts = append(b.starts, len(b.fields))
	b.args = growAny(b.args, 3*len(evs)+len(b.fields))

	pipe := rdb.Pipeline()
	for i, e := range evs {
		key, first := b.key(e.QueueName)
		if first {
			b.dist = append(b.dist, key)
		}
		lo := len(b.args)
		b.args = append(b.args, argXAdd, key, argAuto)
		for j := b.starts[i]; j < b.starts[i+1]; j++ {
			b.args = append(b.args, &b.fields[j])
		}
		b.cmds = append(b.cmds, pipe.Do(ctx, b.args[lo:len(b.args):len(b.args)]...))
		if notify {
			pipe.Publish(ctx, streams.Notifications(prefix), notification(e))
		}
	}
	register := reg.missing(b.dist)
	if len(register) > 0 {
		pipe.SAdd(ctx, streams.Registry(prefix), register...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("xadd pipeline: %w", err)
	}
	reg.learned(register)
	for i, c := range b.cmds {
		id, err := c.Text()
		if err != nil {
			return 0, fmt.Errorf("xadd reply for event %s: %w", evs[i].ID, err)
		}
		evs[i].MessageID = id
	}
	return len(evs), nil
}

// growAny returns s emptied with room for n elements.
func growAny(s []any, n int) []any {
	if cap(s) < n {
		return make([]any, 0, n)
	}
	return s[:0]
}

func notification(e *event.Event) string {
	return fmt.Sprintf(`{"id":%q,"event_type":%q,"schema":%q,"created_at":%q}`,
		e.ID.String(), e.EventType, e.Schema, event.FormatTime(e.CreatedAt))
}
