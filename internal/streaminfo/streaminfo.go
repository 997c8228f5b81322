// Package streaminfo inspects the event streams listed in the
// `{prefix}:streams` registry and their consumer groups: length, consumers,
// pending entries, lag and the age of the oldest pending entry. It feeds
// `eventsctl streams` and the worker's stream_lag/stream_pending gauges, so
// both tell an operator the same numbers.
//
// Lag comes from XINFO GROUPS (Redis >= 7). When Redis cannot tell it (it
// reports nil after deletions or an XGROUP SETID), it is counted as the
// entries after the group's last-delivered id, up to LagCountCap, and marked
// inexact.
package streaminfo

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/internal/streams"
)

// LagCountCap bounds the fallback count of undelivered entries, so
// inspecting a huge stream whose lag Redis cannot tell stays cheap.
const LagCountCap = 10000

// StreamInfo describes one registered stream.
type StreamInfo struct {
	Stream string `json:"stream"`
	// Length is XLEN (0 for a registered stream that does not exist).
	Length int64       `json:"length"`
	Groups []GroupInfo `json:"groups"`
}

// GroupInfo describes one consumer group of a stream.
type GroupInfo struct {
	Name      string `json:"group"`
	Consumers int64  `json:"consumers"`
	// Pending counts entries delivered but not acknowledged.
	Pending int64 `json:"pending"`
	// Lag counts entries not yet delivered to the group.
	Lag int64 `json:"lag"`
	// LagExact is false when Lag was counted by the fallback: then it is
	// exact below LagCountCap and a lower bound at it.
	LagExact        bool   `json:"lag_exact"`
	LastDeliveredID string `json:"last_delivered_id"`
	// OldestPendingID and OldestPendingAge describe the oldest pending
	// entry (by id, that is by publication time); empty and 0 without one.
	OldestPendingID  string        `json:"oldest_pending_id,omitempty"`
	OldestPendingAge time.Duration `json:"oldest_pending_age_ns"`
}

// Backlog is the work the group has left on the stream: lag plus pending.
func (g GroupInfo) Backlog() int64 { return g.Lag + g.Pending }

// Inspect describes every stream of the `{prefix}:streams` registry, sorted
// by key, with its groups sorted by name.
func Inspect(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]StreamInfo, error) {
	keys, err := rdb.SMembers(ctx, streams.Registry(prefix)).Result()
	if err != nil {
		return nil, fmt.Errorf("read stream registry %s: %w", streams.Registry(prefix), err)
	}
	sort.Strings(keys)
	infos, err := lengthsAndGroups(ctx, rdb, keys)
	if err != nil {
		return nil, err
	}
	if err := addPending(ctx, rdb, infos, time.Now()); err != nil {
		return nil, err
	}
	if err := fillUnknownLag(ctx, rdb, infos); err != nil {
		return nil, err
	}
	return infos, nil
}

// lengthsAndGroups runs XLEN and XINFO GROUPS for every key in one pipeline.
func lengthsAndGroups(ctx context.Context, rdb redis.UniversalClient, keys []string) ([]StreamInfo, error) {
	pipe := rdb.Pipeline()
	lens := make([]*redis.IntCmd, len(keys))
	groups := make([]*redis.XInfoGroupsCmd, len(keys))
	for i, k := range keys {
		lens[i] = pipe.XLen(ctx, k)
		groups[i] = pipe.XInfoGroups(ctx, k)
	}
	// Per-command errors are read below: a registered stream that was
	// deleted answers "no such key" and is shown as empty.
	_, _ = pipe.Exec(ctx)
	infos := make([]StreamInfo, len(keys))
	for i, k := range keys {
		n, err := lens[i].Result()
		if err != nil {
			return nil, fmt.Errorf("XLEN %s: %w", k, err)
		}
		gs, err := groups[i].Result()
		if err != nil && !isNoSuchKey(err) {
			return nil, fmt.Errorf("XINFO GROUPS %s: %w", k, err)
		}
		infos[i] = StreamInfo{Stream: k, Length: n, Groups: toGroups(gs)}
	}
	return infos, nil
}

func toGroups(gs []redis.XInfoGroup) []GroupInfo {
	out := make([]GroupInfo, 0, len(gs))
	for _, g := range gs {
		out = append(out, GroupInfo{
			Name: g.Name, Consumers: g.Consumers, Pending: g.Pending,
			Lag: g.Lag, LagExact: g.Lag >= 0, LastDeliveredID: g.LastDeliveredID,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func isNoSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}

// addPending reads the XPENDING summary of every group with pending entries.
func addPending(ctx context.Context, rdb redis.UniversalClient, infos []StreamInfo, now time.Time) error {
	type ref struct{ s, g int }
	var refs []ref
	pipe := rdb.Pipeline()
	var cmds []*redis.XPendingCmd
	for si := range infos {
		for gi, g := range infos[si].Groups {
			if g.Pending > 0 {
				refs = append(refs, ref{si, gi})
				cmds = append(cmds, pipe.XPending(ctx, infos[si].Stream, g.Name))
			}
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	_, _ = pipe.Exec(ctx)
	for i, r := range refs {
		g := &infos[r.s].Groups[r.g]
		p, err := cmds[i].Result()
		if err != nil {
			return fmt.Errorf("XPENDING %s %s: %w", infos[r.s].Stream, g.Name, err)
		}
		g.OldestPendingID = p.Lower
		if t, ok := idTime(p.Lower); ok && now.After(t) {
			g.OldestPendingAge = now.Sub(t)
		}
	}
	return nil
}

// countAfterScript counts a stream's entries after an id, up to a cap,
// without sending them over the wire.
//
//	KEYS[1] stream; ARGV[1] exclusive start id; ARGV[2] cap
var countAfterScript = redis.NewScript(`
return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
`)

// fillUnknownLag counts the lag Redis reported as nil.
func fillUnknownLag(ctx context.Context, rdb redis.UniversalClient, infos []StreamInfo) error {
	for si := range infos {
		for gi := range infos[si].Groups {
			g := &infos[si].Groups[gi]
			if g.LagExact {
				continue
			}
			n, err := countAfterScript.Run(ctx, rdb, []string{infos[si].Stream}, g.LastDeliveredID, LagCountCap).Int64()
			if err != nil {
				return fmt.Errorf("count undelivered entries of %s for %s: %w", infos[si].Stream, g.Name, err)
			}
			g.Lag = n
		}
	}
	return nil
}

// idTime is the millisecond timestamp of a stream id `<ms>-<seq>`.
func idTime(id string) (time.Time, bool) {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(n), true
}

// GroupBacklog sums lag plus pending over every stream the group reads: the
// work the group has left, the autoscaling signal.
func GroupBacklog(infos []StreamInfo, group string) int64 {
	var n int64
	for _, s := range infos {
		for _, g := range s.Groups {
			if g.Name == group {
				n += g.Backlog()
			}
		}
	}
	return n
}

// Groups lists the distinct group names in infos, sorted.
func Groups(infos []StreamInfo) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range infos {
		for _, g := range s.Groups {
			if !seen[g.Name] {
				seen[g.Name] = true
				out = append(out, g.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}
