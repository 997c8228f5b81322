package streaminfo

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// TrimBelow returns the id below which every entry of the stream has been
// acknowledged by every group (DESIGN §2), and false when nothing may be
// trimmed: a stream without groups (a group created later at ID 0 must
// still find its entries), or a group that has read nothing. For each group
// the bound is its oldest pending entry, or, with nothing pending, the entry
// after the last one delivered; the stream's bound is the lowest of them.
func TrimBelow(s StreamInfo) (string, bool) {
	if len(s.Groups) == 0 {
		return "", false
	}
	var lowest string
	for _, g := range s.Groups {
		bound := g.OldestPendingID
		if g.Pending == 0 || bound == "" {
			next, ok := nextID(g.LastDeliveredID)
			if !ok {
				return "", false
			}
			bound = next
		}
		if lowest == "" || idLess(bound, lowest) {
			lowest = bound
		}
	}
	return lowest, lowest != "" && lowest != "0-0"
}

// Trim removes, from every registered stream, the entries every group has
// acknowledged (XTRIM MINID), and returns how many it removed per stream.
// A group created after this ran will not see what was trimmed; one that
// exists is never short of an entry it has not acknowledged.
func Trim(ctx context.Context, rdb redis.UniversalClient, prefix string) (map[string]int64, error) {
	infos, err := Inspect(ctx, rdb, prefix)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, s := range infos {
		minID, ok := TrimBelow(s)
		if !ok {
			continue
		}
		n, err := rdb.XTrimMinID(ctx, s.Stream, minID).Result()
		if err != nil {
			return out, fmt.Errorf("XTRIM %s MINID %s: %w", s.Stream, minID, err)
		}
		if n > 0 {
			out[s.Stream] = n
		}
	}
	return out, nil
}

// nextID is the smallest id after id (`<ms>-<seq+1>`); "0-0" (nothing
// delivered) and unreadable ids give false.
func nextID(id string) (string, bool) {
	ms, seq, ok := parseID(id)
	if !ok || (ms == 0 && seq == 0) {
		return "", false
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq+1, 10), true
}

func idLess(a, b string) bool {
	am, as, _ := parseID(a)
	bm, bs, _ := parseID(b)
	return am < bm || (am == bm && as < bs)
}

func parseID(id string) (ms, seq uint64, ok bool) {
	m, s, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(m, 10, 64)
	seq, err2 := strconv.ParseUint(s, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}
