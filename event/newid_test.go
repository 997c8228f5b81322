package event_test

import (
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
)

// NewID takes its random bits from a shared buffer: across goroutines and
// many buffer refills, every id must still be a distinct UUIDv7, and each
// goroutine's ids must increase.
func TestNewIDConcurrentUniqueV7(t *testing.T) {
	const goroutines, perG = 4, 5000 // 20000 ids, 8 random bytes each: about 40 refills of the 4 KiB buffer
	ids := make([][]uuid.UUID, goroutines)
	var wg sync.WaitGroup
	for g := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perG {
				id, err := event.NewID()
				if err != nil {
					t.Error(err)
					return
				}
				ids[g] = append(ids[g], id)
			}
		}()
	}
	wg.Wait()
	seen := make(map[uuid.UUID]bool, goroutines*perG)
	randBits := make(map[[8]byte]bool, goroutines*perG)
	for _, list := range ids {
		require.Len(t, list, perG)
		for i, id := range list {
			require.Equal(t, uuid.Version(7), id.Version(), "%s", id)
			require.Equal(t, uuid.RFC4122, id.Variant(), "%s", id)
			require.False(t, seen[id], "duplicate id %s", id)
			seen[id] = true
			var rb [8]byte
			copy(rb[:], id[8:])
			require.False(t, randBits[rb], "random bits of %s repeat", id)
			randBits[rb] = true
			if i > 0 {
				require.Positive(t, compareIDs(id, list[i-1]), "%s after %s", id, list[i-1])
			}
		}
	}
}

func compareIDs(a, b uuid.UUID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}
