// Package streams names and finds the Redis Streams of neo-events
// (DESIGN §2): event stream keys `{prefix}:{scope}:{category}:{partition}`,
// FNV-1a partitioning, the `{prefix}:streams` registry set, dead-letter and
// notification keys, and the subscription patterns workers resolve against
// the registry.
package streams

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/neo-events/neo-events/event"
)

// Partition returns FNV-1a 32-bit of key modulo partitions. With fewer than
// one partition (a config that skipped validation) every key goes to 0
// rather than dividing by zero.
func Partition(key string, partitions int) int {
	if partitions < 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(partitions))
}

// Key is the stream key of an event: `{prefix}:{scope}:{category}:{partition}`.
func Key(prefix string, e *event.Event, partitions int) string {
	return KeyFor(prefix, event.ScopeOf(e.Schema), event.Category(e.EventType), Partition(e.EffectivePartitionKey(), partitions))
}

// KeyFor assembles a stream key from its parts.
func KeyFor(prefix, scope, category string, partition int) string {
	return prefix + ":" + scope + ":" + category + ":" + strconv.Itoa(partition)
}

// Registry is the set listing every event stream: `{prefix}:streams`.
func Registry(prefix string) string { return prefix + ":streams" }

// DLQ is the dead-letter stream of a consumer group: `{prefix}:dlq:{group}`.
func DLQ(prefix, group string) string { return prefix + ":dlq:" + group }

// Notifications is the Pub/Sub channel for real-time notifications.
func Notifications(prefix string) string { return prefix + ":notifications" }

// Parsed is an event stream key taken apart.
type Parsed struct {
	Prefix, Scope, Category string
	Partition               int
}

// Parse takes an event stream key apart; it refuses keys that are not of
// the form `{prefix}:{admin|tenants}:{category}:{n}` exactly as KeyFor
// writes them (category [a-z_]+, n without sign or leading zeros), so a key
// parses only if it round-trips.
func Parse(key string) (Parsed, error) {
	parts := strings.Split(key, ":")
	if len(parts) != 4 {
		return Parsed{}, fmt.Errorf("stream key %q: want {prefix}:{scope}:{category}:{partition}", key)
	}
	if parts[0] == "" {
		return Parsed{}, fmt.Errorf("stream key %q: empty prefix", key)
	}
	if parts[1] != event.ScopeAdmin && parts[1] != event.ScopeTenants {
		return Parsed{}, fmt.Errorf("stream key %q: scope %q is not admin or tenants", key, parts[1])
	}
	if !validCategory(parts[2]) {
		return Parsed{}, fmt.Errorf("stream key %q: category %q is not [a-z_]+", key, parts[2])
	}
	n, err := strconv.Atoi(parts[3])
	if err != nil || n < 0 || strconv.Itoa(n) != parts[3] {
		return Parsed{}, fmt.Errorf("stream key %q: partition %q is not a non-negative number", key, parts[3])
	}
	return Parsed{Prefix: parts[0], Scope: parts[1], Category: parts[2], Partition: n}, nil
}

func validCategory(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// Subscription is a compiled `<scope>:<category>` pattern (`admin:*`,
// `tenants:users`, `*:*`).
type Subscription struct{ Scope, Category string }

// ParseSubscription compiles a subscription pattern: scope `admin`,
// `tenants` or `*`; category [a-z_]+ or `*`.
func ParseSubscription(s string) (Subscription, error) {
	scope, cat, ok := strings.Cut(s, ":")
	if !ok {
		return Subscription{}, fmt.Errorf("subscription %q: want <scope>:<category>", s)
	}
	if scope != "*" && scope != event.ScopeAdmin && scope != event.ScopeTenants {
		return Subscription{}, fmt.Errorf("subscription %q: scope must be admin, tenants or *", s)
	}
	if cat != "*" && !validCategory(cat) {
		return Subscription{}, fmt.Errorf("subscription %q: category must be [a-z_]+ or *", s)
	}
	return Subscription{Scope: scope, Category: cat}, nil
}

// Matches reports whether the stream key belongs to the subscription under prefix.
func (s Subscription) Matches(prefix, key string) bool {
	p, err := Parse(key)
	if err != nil || p.Prefix != prefix {
		return false
	}
	return (s.Scope == "*" || s.Scope == p.Scope) && (s.Category == "*" || s.Category == p.Category)
}
