package processor

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestNewExecutionID(t *testing.T) {
	t.Parallel()
	seen := map[uuid.UUID]bool{}
	before := time.Now().UnixMilli()
	for range 10000 {
		id := newExecutionID()
		require.Equal(t, uuid.Version(7), id.Version())
		require.Equal(t, uuid.RFC4122, id.Variant())
		require.False(t, seen[id], "unique")
		seen[id] = true
		sec, nsec := id.Time().UnixTime()
		ms := sec*1000 + nsec/1e6
		require.GreaterOrEqual(t, ms, before)
		require.LessOrEqual(t, ms, time.Now().UnixMilli())
		parsed, err := uuid.Parse(id.String())
		require.NoError(t, err)
		require.Equal(t, id, parsed)
	}
}
