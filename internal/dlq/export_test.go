package dlq

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/internal/streams"
)

// MoveTwoStep and RedriveTwoStep expose the Redis Cluster fallbacks, which a
// single-node test Redis never triggers through CROSSSLOT.
func MoveTwoStep(ctx context.Context, rdb redis.Cmdable, prefix, group string, l Letter) (string, error) {
	var pairs []any
	for _, s := range AppendFields(nil, l.Fields, l) {
		pairs = append(pairs, s)
	}
	return moveTwoStep(ctx, rdb, streams.DLQ(prefix, group), group, l, pairs)
}

func RedriveTwoStep(ctx context.Context, rdb redis.Cmdable, prefix, group string, e Entry) (bool, error) {
	return redriveTwoStep(ctx, rdb, streams.DLQ(prefix, group), e)
}
