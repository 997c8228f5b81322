package bench

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	tu "github.com/neo-events/neo-events/internal/testutil"
)

func TestWALActivity(t *testing.T) {
	t0 := time.Unix(1000, 0)
	start := walSample{at: t0, lsn: 1 << 20, timed: 5, requested: 7, maxWALMB: 1024, timeoutSec: 300, ok: true}
	end := walSample{at: t0.Add(2 * time.Second), lsn: 5 << 20, timed: 6, requested: 9, maxWALMB: 1024, timeoutSec: 300, ok: true}
	tests := []struct {
		name       string
		start, end walSample
		events     int64
		want       *PostgresActivity
	}{
		{"counted", start, end, 1024, &PostgresActivity{
			WALBytes: 4 << 20, WALBytesPerEvent: 4096, WALMBPerSec: 2,
			Checkpoints: 3, CheckpointsRequested: 2, MaxWALSizeMB: 1024, CheckpointTimeoutSec: 300,
		}},
		{"start unread", walSample{}, end, 1024, nil},
		{"end unread", start, walSample{}, 1024, nil},
		{"no events", start, end, 0, nil},
		{"another server (WAL went back)", end, start, 1024, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, walActivity(tt.start, tt.end, tt.events))
		})
	}
}

// TestSampleWALSeesCheckpoint reads the real server's counters around a
// CHECKPOINT and some writes.
func TestSampleWALSeesCheckpoint(t *testing.T) {
	tu.SkipIfShort(t)
	ctx := tu.Context(t)
	pool, err := pgxpool.New(ctx, tu.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	require.False(t, sampleWAL(ctx, nil).ok, "no pool: nothing read")
	before := sampleWAL(ctx, pool)
	require.True(t, before.ok)
	_, err = pool.Exec(ctx, "CREATE TABLE t AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 1000) g")
	require.NoError(t, err)
	if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil {
		t.Skipf("CHECKPOINT refused (needs superuser or pg_checkpoint): %v", err)
	}
	after := sampleWAL(ctx, pool)
	require.True(t, after.ok)

	a := walActivity(before, after, 1000)
	require.NotNil(t, a)
	require.Greater(t, a.WALBytes, int64(1000*100), "1000 rows of 100 bytes were written")
	require.GreaterOrEqual(t, a.CheckpointsRequested, int64(1), "%+v", a)
	require.GreaterOrEqual(t, a.Checkpoints, a.CheckpointsRequested)
	require.Positive(t, a.MaxWALSizeMB)
	require.Positive(t, a.CheckpointTimeoutSec)
}
