package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// DeletePrefix removes every key under prefix + ":" (streams, the
// registry, DLQs, retry sets, markers) with SCAN and UNLINK in batches,
// and returns how many it removed. It is for test, bench and demo
// namespaces; a production prefix is never deleted by neo-events.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (int64, error) {
	var n int64
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	batch := make([]string, 0, 500)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		d, err := rdb.Unlink(ctx, batch...).Result()
		n += d
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return n, fmt.Errorf("delete keys %s:*: %w", prefix, err)
			}
		}
	}
	if err := errors.Join(iter.Err(), flush()); err != nil {
		return n, fmt.Errorf("delete keys %s:*: %w", prefix, err)
	}
	return n, nil
}
