package streams_test

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/streams"
)

// fnv1a32 is FNV-1a written out from its definition, so the test does not
// trust hash/fnv alone.
func fnv1a32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func TestPartitionKnownValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key        string
		hash       uint32
		partitions int
		want       int
	}{
		{"", 0x811c9dc5, 8, 5},
		{"a", 0xe40c292c, 8, 4},
		{"foobar", 0xbf9cf968, 8, 0},
		{"foobar", 0xbf9cf968, 10, 0},
		{"", 0x811c9dc5, 10, 1},
		{"0190a6f2-1111-7abc-8def-000000000002", 0x72e482c4, 8, 4},
		{"0190a6f2-1111-7abc-8def-000000000002", 0x72e482c4, 10, 8},
		{"org-42", 0x663c027e, 8, 6},
		{"org-42", 0x663c027e, 1, 0},
	}
	for _, tt := range tests {
		require.Equal(t, tt.hash, fnv1a32(tt.key), "reference FNV-1a of %q", tt.key)
		require.Equal(t, tt.want, streams.Partition(tt.key, tt.partitions), "Partition(%q, %d)", tt.key, tt.partitions)
	}
}

func TestPartitionAgreesWithFNV(t *testing.T) {
	t.Parallel()
	for i := 0; i < 2000; i++ {
		key := uuid.NewString()
		if i%3 == 0 {
			key = fmt.Sprintf("tenant-%d/é", i)
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(key))
		require.Equal(t, h.Sum32(), fnv1a32(key))
		for _, p := range []int{1, 2, 7, 8, 64, 1024} {
			got := streams.Partition(key, p)
			require.Equal(t, int(h.Sum32()%uint32(p)), got)
			require.GreaterOrEqual(t, got, 0)
			require.Less(t, got, p)
		}
	}
}

func TestPartitionWithoutPartitionsDoesNotPanic(t *testing.T) {
	t.Parallel()
	for _, p := range []int{0, -1, -8} {
		require.Equal(t, 0, streams.Partition("org-42", p), "partitions %d", p)
	}
}

func TestPartitionDistribution(t *testing.T) {
	t.Parallel()
	const partitions, n = 8, 80_000
	counts := make([]int, partitions)
	for i := 0; i < n; i++ {
		counts[streams.Partition(uuid.NewString(), partitions)]++
	}
	// Expect 10,000 each; ±5% is about 5 standard deviations.
	for p, c := range counts {
		require.InDelta(t, n/partitions, c, 0.05*n/partitions, "partition %d got %d of %d", p, c, n)
	}
}

func TestKeyForEvent(t *testing.T) {
	t.Parallel()
	agg := uuid.MustParse("0190a6f2-1111-7abc-8def-000000000002") // partition 4 of 8
	tests := []struct {
		name         string
		schema       string
		eventType    string
		partitionKey string
		partitions   int
		want         string
	}{
		{"tenant by aggregate", "tenant_acme", "users.created", "", 8, "events:tenants:users:4"},
		{"admin by aggregate", "admin", "billing.invoice_paid", "", 8, "events:admin:billing:4"},
		{"partition key wins", "tenant_acme", "users.created", "org-42", 8, "events:tenants:users:6"},
		{"other partition count", "tenant_acme", "users.created", "", 10, "events:tenants:users:8"},
		{"one partition", "tenant_other", "orders.placed", "", 1, "events:tenants:orders:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := event.New(tt.schema, tt.eventType, "x", agg, json.RawMessage(`{}`))
			require.NoError(t, err)
			e.PartitionKey = tt.partitionKey
			require.Equal(t, tt.want, streams.Key("events", e, tt.partitions))
		})
	}
}

func TestKeyForParseRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []streams.Parsed{
		{Prefix: "events", Scope: "admin", Category: "users", Partition: 0},
		{Prefix: "events", Scope: "tenants", Category: "billing_invoices", Partition: 7},
		{Prefix: "neo-staging.v2", Scope: "tenants", Category: "x", Partition: 1023},
	}
	for _, want := range tests {
		key := streams.KeyFor(want.Prefix, want.Scope, want.Category, want.Partition)
		got, err := streams.Parse(key)
		require.NoError(t, err, key)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("Parse(%q) (-want +got):\n%s", key, diff)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for _, key := range []string{
		"",
		"events",
		"events:admin:users",
		"events:admin:users:1:2",
		":admin:users:1",
		"events:public:users:1",
		"events:tenant_acme:users:1",
		"events:ADMIN:users:1",
		"events:admin::1",
		"events:admin:Users:1",
		"events:admin:us-ers:1",
		"events:admin:users:",
		"events:admin:users:x",
		"events:admin:users:-1",
		"events:admin:users:+1",
		"events:admin:users:01",
		"events:admin:users: 1",
		"events:admin:users:99999999999999999999",
		streams.Registry("events"),
		streams.DLQ("events", "workers"),
		streams.Notifications("events"),
	} {
		_, err := streams.Parse(key)
		require.Error(t, err, "Parse(%q)", key)
	}
}

func TestAuxiliaryKeys(t *testing.T) {
	t.Parallel()
	require.Equal(t, "events:streams", streams.Registry("events"))
	require.Equal(t, "events:dlq:billing-workers", streams.DLQ("events", "billing-workers"))
	require.Equal(t, "events:notifications", streams.Notifications("events"))
}

func TestSubscriptionMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sub, prefix, key string
		match            bool
	}{
		{"admin:*", "events", "events:admin:users:3", true},
		{"admin:*", "events", "events:admin:billing:0", true},
		{"admin:*", "events", "events:tenants:users:3", false},
		{"tenants:users", "events", "events:tenants:users:3", true},
		{"tenants:users", "events", "events:tenants:users_x:3", false},
		{"tenants:users", "events", "events:admin:users:3", false},
		{"*:users", "events", "events:admin:users:1", true},
		{"*:users", "events", "events:tenants:users:1", true},
		{"*:users", "events", "events:tenants:orders:1", false},
		{"*:*", "events", "events:tenants:orders:1", true},
		{"*:*", "events", "other:tenants:orders:1", false},
		{"*:*", "ev", "events:tenants:orders:1", false},
		{"*:*", "events", "events:streams", false},
		{"*:*", "events", "events:dlq:workers", false},
		{"*:*", "events", "events:tenants:orders:01", false},
	}
	for _, tt := range tests {
		s, err := streams.ParseSubscription(tt.sub)
		require.NoError(t, err, tt.sub)
		require.Equal(t, tt.match, s.Matches(tt.prefix, tt.key), "%s matches %s under %s", tt.sub, tt.key, tt.prefix)
	}
}

func TestParseSubscription(t *testing.T) {
	t.Parallel()
	got, err := streams.ParseSubscription("tenants:users")
	require.NoError(t, err)
	require.Equal(t, streams.Subscription{Scope: "tenants", Category: "users"}, got)

	for _, s := range []string{"", "admin", ":users", "admin:", "public:*", "admin:Users", "admin:us*", "admin:users:1", "*"} {
		_, err := streams.ParseSubscription(s)
		require.Error(t, err, "ParseSubscription(%q)", s)
	}
}
