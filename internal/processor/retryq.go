package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// RetryKey is the sorted set of scheduled retries of a group:
// `{prefix}:retry:{group}`, scored by due time (unix ms). Retries live in
// Redis, not in a worker's memory, so a crash loses no schedule.
func RetryKey(prefix, group string) string { return prefix + ":retry:" + group }

// DoneKey is the hash of actions already completed for an event while it
// is in flight: `{prefix}:done:{group}:{event_id}`. A redelivered entry
// skips them, so a completed execution is never re-run. It is deleted with
// the event's final acknowledgement.
func DoneKey(prefix, group string, eventID uuid.UUID) string {
	return prefix + ":done:" + group + ":" + eventID.String()
}

// doneTTL bounds how long a forgotten marker can outlive its event.
const doneTTL = 7 * 24 * time.Hour

// retryItem is one event with actions still to retry. It is the member of
// the retry set, as JSON.
type retryItem struct {
	V          int               `json:"v"`
	Stream     string            `json:"stream"`
	EntryID    string            `json:"entry_id"`
	Fields     map[string]string `json:"fields"`
	StartedAt  time.Time         `json:"started_at"`
	Failed     bool              `json:"failed,omitempty"`
	RetryCount int               `json:"retry_count,omitempty"`
	LastError  string            `json:"last_error,omitempty"`
	Actions    []pendingAction   `json:"actions"`
	Nonce      string            `json:"nonce"`
}

// pendingAction is an action waiting for its next attempt.
type pendingAction struct {
	ID      uuid.UUID `json:"id"`
	Name    string    `json:"name"`
	Attempt int       `json:"attempt"` // the number of the next attempt
	Due     int64     `json:"due"`     // unix ms
	Parent  uuid.UUID `json:"parent,omitempty"`
}

func (it *retryItem) due() int64 {
	var d int64
	for i, a := range it.Actions {
		if i == 0 || a.Due < d {
			d = a.Due
		}
	}
	return d
}

func (it *retryItem) encode() (string, error) {
	b, err := json.Marshal(it)
	if err != nil {
		return "", fmt.Errorf("encode retry item: %w", err)
	}
	return string(b), nil
}

func decodeRetryItem(s string) (*retryItem, error) {
	var it retryItem
	if err := json.Unmarshal([]byte(s), &it); err != nil {
		return nil, fmt.Errorf("decode retry item: %w", err)
	}
	if it.V != 1 || len(it.Actions) == 0 || it.Fields == nil {
		return nil, fmt.Errorf("decode retry item: unsupported or empty item")
	}
	return &it, nil
}

// claimDue leases due retries: each returned member's score moves to
// now+lease, so a worker that dies while running it leaves it to be taken
// again when the lease ends.
var claimDue = redis.NewScript(`
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(items) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
return items
`)

// finalize applies an event's outcome in Redis at once: dead-letter entries
// are added, the source entry acknowledged, the old retry item replaced by
// the new one, and the done-marker dropped when the event is final. The
// XADDs come first: a script is not rolled back, so if anything fails it
// fails before the acknowledgement, and the entry is redelivered rather
// than lost.
//
// KEYS: source stream, dlq stream, retry set, done marker.
// ARGV: group, entry id (” = none), old member, new member, new score,
// drop marker (1/0), number of dead letters, then per letter: field count
// and the fields.
var finalize = redis.NewScript(`
local i = 8
for d = 1, tonumber(ARGV[7]) do
  local n = tonumber(ARGV[i]); i = i + 1
  local f = {}
  for k = 1, n do f[k] = ARGV[i]; i = i + 1 end
  redis.call('XADD', KEYS[2], '*', unpack(f))
end
if ARGV[2] ~= '' then redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) end
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[3], ARGV[3]) end
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4]) end
if ARGV[6] == '1' then redis.call('DEL', KEYS[4]) end
return 1
`)

// outcome is what finalize writes.
type outcome struct {
	group, stream, entryID    string
	dlqKey, retryKey, doneKey string
	oldItem, newItem          string
	newDue                    int64
	final                     bool
	letters                   [][]string
	marked                    bool // a done-marker may exist and must go
	// The event's ids, for the log line of a failed plain acknowledgement.
	eventID, correlationID uuid.UUID
}

// plainAck reports whether the outcome is only an acknowledgement: final,
// of a delivered entry (not a retry item), without dead letters.
func (o *outcome) plainAck() bool {
	return o.final && o.entryID != "" && o.oldItem == "" && len(o.letters) == 0
}

func (o *outcome) args() (keys []string, args []any) {
	keys = []string{o.stream, o.dlqKey, o.retryKey, o.doneKey}
	final := "0"
	if o.final {
		final = "1"
	}
	args = []any{o.group, o.entryID, o.oldItem, o.newItem, strconv.FormatInt(o.newDue, 10), final, strconv.Itoa(len(o.letters))}
	for _, l := range o.letters {
		args = append(args, strconv.Itoa(len(l)))
		for _, f := range l {
			args = append(args, f)
		}
	}
	return keys, args
}

// markDone records a completed action of an in-flight event. The value is
// the attempt's execution row as JSON: if the worker dies before that row
// reaches PostgreSQL, whoever redelivers the entry writes it from here, so
// the record of a completed attempt is never lost with the worker.
func markDone(ctx context.Context, pipe redis.Pipeliner, key, actionID string, execution []byte) {
	pipe.HSet(ctx, key, actionID, execution)
	pipe.PExpire(ctx, key, doneTTL)
}
