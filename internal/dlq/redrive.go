package dlq

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/neo-events/neo-events/internal/streams"
)

// redriveScript moves one dead letter back to its source stream.
//
//	KEYS[1] DLQ stream, KEYS[2] source stream
//	ARGV[1] DLQ entry id
//
// It reads the entry itself, so what goes back is exactly what is stored:
// every non-dlq_* field in its stored order, minus an older redrive_actions
// and redrive_count, plus redrive_actions = dlq_action (possibly empty) and
// redrive_count + 1. It then XDELs the dead letter. It returns the new
// entry's id, or nil when the dead letter is already gone (a concurrent
// redrive or purge took it). A dlq_source_stream other than KEYS[2] is an
// error raised before any write.
var redriveScript = redis.NewScript(`
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return false end
local f = e[1][2]
local out, actions, count, src = {}, '', 0, ''
for i = 1, #f, 2 do
  local k, v = f[i], f[i + 1]
  if k == 'dlq_action' then actions = v
  elseif k == 'dlq_source_stream' then src = v
  elseif k == 'redrive_count' then
    if string.match(v, '^%d%d?%d?%d?%d?%d?%d?%d?%d?$') then count = tonumber(v) end
  elseif k ~= 'redrive_actions' and string.sub(k, 1, 4) ~= 'dlq_' then
    out[#out + 1] = k
    out[#out + 1] = v
  end
end
if src ~= KEYS[2] then
  return redis.error_reply('dlq: entry ' .. ARGV[1] .. ' has source stream ' .. src .. ', not ' .. KEYS[2])
end
out[#out + 1] = 'redrive_actions'
out[#out + 1] = actions
out[#out + 1] = 'redrive_count'
out[#out + 1] = string.format('%d', count + 1)
local id = redis.call('XADD', KEYS[2], '*', unpack(out))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
`)

// RedriveResult is what RedriveEntries did.
type RedriveResult struct {
	// Redriven counts dead letters moved back to their source streams.
	Redriven int
	// Skipped lists dead letters left in place because their
	// dlq_source_stream is not an event stream under the prefix.
	Skipped []string
}

// Redrive moves the matching dead letters of group back to their source
// streams, oldest first, at most ratePerSec per second (<= 0: unlimited) and
// at most limit of them (<= 0: all), each with one atomic script. It returns
// how many were redriven. Entries with a bad source stream are left in place
// and reported by an error wrapping ErrBadSource after the others went.
func Redrive(ctx context.Context, rdb redis.Cmdable, prefix, group string, f Filter, ratePerSec float64, limit int) (int, error) {
	res, err := RedriveEntries(ctx, rdb, prefix, group, f, ratePerSec, limit)
	if err == nil && len(res.Skipped) > 0 {
		err = fmt.Errorf("%w: %d left in the DLQ (first %s); inspect with `eventsctl dlq show`, then purge them",
			ErrBadSource, len(res.Skipped), res.Skipped[0])
	}
	return res.Redriven, err
}

// RedriveEntries is Redrive reporting the skipped entries instead of
// turning them into an error.
func RedriveEntries(ctx context.Context, rdb redis.Cmdable, prefix, group string, f Filter, ratePerSec float64, limit int) (RedriveResult, error) {
	var res RedriveResult
	if math.IsNaN(ratePerSec) {
		return res, fmt.Errorf("%w: rate is NaN", ErrInvalid)
	}
	lim := rate.NewLimiter(rate.Inf, 1)
	if ratePerSec > 0 {
		lim = rate.NewLimiter(rate.Limit(ratePerSec), 1)
	}
	key := streams.DLQ(prefix, group)
	err := scan(ctx, rdb, key, f, func(e Entry) (bool, error) {
		if !validSource(prefix, e.SourceStream) {
			res.Skipped = append(res.Skipped, e.ID)
			return true, nil
		}
		if err := lim.Wait(ctx); err != nil {
			return false, err
		}
		moved, err := redriveOne(ctx, rdb, key, e)
		if err != nil {
			return false, err
		}
		if moved {
			res.Redriven++
		}
		return limit <= 0 || res.Redriven < limit, nil
	})
	if err != nil {
		return res, fmt.Errorf("redrive dead letters of group %s: %w", group, err)
	}
	return res, nil
}

func validSource(prefix, stream string) bool {
	p, err := streams.Parse(stream)
	return err == nil && p.Prefix == prefix
}

// redriveOne runs the script; false means the entry was already gone.
func redriveOne(ctx context.Context, rdb redis.Cmdable, dlqKey string, e Entry) (bool, error) {
	err := redriveScript.Run(ctx, rdb, []string{dlqKey, e.SourceStream}, e.ID).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case isCrossSlot(err):
		return redriveTwoStep(ctx, rdb, dlqKey, e)
	case err != nil:
		return false, fmt.Errorf("redrive %s to %s: %w", e.ID, e.SourceStream, err)
	}
	return true, nil
}

// redriveTwoStep is the script's work where one script cannot reach both
// keys (Redis Cluster): XADD first, then XDEL, so a crash in between
// duplicates the event (consumers tolerate that) but never loses it.
// Without the stored field order, fields go in AppendFields' stable order.
func redriveTwoStep(ctx context.Context, rdb redis.Cmdable, dlqKey string, e Entry) (bool, error) {
	if _, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.SourceStream, Values: RedriveFields(e)}).Result(); err != nil {
		return false, fmt.Errorf("redrive %s to %s: %w", e.ID, e.SourceStream, err)
	}
	if err := rdb.XDel(ctx, dlqKey, e.ID).Err(); err != nil {
		return true, fmt.Errorf("redrive %s: re-published but not deleted from the DLQ: %w", e.ID, err)
	}
	return true, nil
}

// RedriveFields is the entry a redrive of e publishes, as field, value
// pairs: the original fields (without dlq_* and an older redrive_actions or
// redrive_count) in AppendFields' order, then redrive_actions and
// redrive_count. The atomic path builds the same fields in Lua, keeping the
// stored order instead.
func RedriveFields(e Entry) []string {
	orig := make(map[string]string, len(e.Fields))
	for k, v := range e.Fields {
		if k != FieldRedriveActions && k != FieldRedriveCount {
			orig[k] = v
		}
	}
	return append(appendOriginal(nil, orig),
		FieldRedriveActions, e.Action,
		FieldRedriveCount, strconv.Itoa(redriveCount(e.Fields[FieldRedriveCount])+1),
	)
}

// redriveCount reads a redrive_count as the script does: anything but 1 to
// 9 digits counts as 0, so a junk value cannot overflow either side.
func redriveCount(s string) int {
	if len(s) == 0 || len(s) > 9 || strings.Trim(s, "0123456789") != "" {
		return 0
	}
	n, _ := strconv.Atoi(s)
	return n
}
