package bench

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	tu "github.com/neo-events/neo-events/internal/testutil"
)

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   float64 // ms
		tol    float64 // relative
	}{
		{"empty", nil, 0.99, 0, 0},
		{"one", []time.Duration{3 * time.Millisecond}, 0.5, 3, 0.02},
		{"small exact", []time.Duration{10 * time.Microsecond, 20 * time.Microsecond, 30 * time.Microsecond}, 0.5, 0.02, 0},
		{"negative is zero", []time.Duration{-time.Second}, 0.5, 0, 0},
		{"p99 of 1..1000ms", ramp(1000, time.Millisecond), 0.99, 990, 0.02},
		{"p50 of 1..1000ms", ramp(1000, time.Millisecond), 0.50, 500, 0.02},
		{"huge is capped, not lost", []time.Duration{100 * 24 * time.Hour}, 1, float64(100 * 24 * time.Hour / time.Millisecond), 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			require.Equal(t, uint64(len(tt.values)), h.Count())
			got := h.Quantile(tt.q)
			require.InDelta(t, tt.want, got, tt.want*tt.tol+1e-9, "q=%g", tt.q)
		})
	}
}

func ramp(n int, unit time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * unit
	}
	return out
}

func TestBucketsAreMonotonic(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<22; v += 1 + v/100 {
		b := bucket(v)
		require.GreaterOrEqual(t, b, prev, "v=%d", v)
		require.LessOrEqual(t, lowest(b), v, "v=%d", v)
		require.Less(t, float64(v-lowest(b)), float64(v)/subBuckets+1, "v=%d: bucket too coarse", v)
		prev = b
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		flag string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no mode", func(c *Config) { c.Mode = "" }, "--mode"},
		{"bad mode", func(c *Config) { c.Mode = "fast" }, "--mode"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "--rate"},
		{"too many tenants", func(c *Config) { c.Tenants = 5000 }, "--tenants"},
		{"hostile database", func(c *Config) { c.Database = `x"; DROP DATABASE test; --` }, "--database"},
		{"upper-case database", func(c *Config) { c.Database = "Bench" }, "--database"},
		{"negative injection", func(c *Config) { c.InjectLost = -1 }, "--inject-lost"},
		{"huge payload", func(c *Config) { c.PayloadBytes = 1 << 30 }, "--payload-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Mode: ModeE2E}
			tt.edit(&c)
			err := c.WithDefaults().Validate()
			if tt.flag == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrConfig)
			require.Contains(t, err.Error(), tt.flag)
		})
	}
}

func TestDefaultsFollowMode(t *testing.T) {
	require.Equal(t, DefaultWorkerEvents, Config{Mode: ModeWorker}.WithDefaults().Events)
	require.Equal(t, DefaultRedisBatch, Config{Mode: ModeRedisOnly}.WithDefaults().Batch)
	require.Equal(t, DefaultRedisPublishers, Config{Mode: ModeRedisOnly}.WithDefaults().Publishers)
	require.Equal(t, 1, Config{Mode: ModePublish}.WithDefaults().Batch)
	require.True(t, Config{Mode: ModeE2E}.WithDefaults().UpdateStatus, "e2e always writes statuses")
}

// small is a brief run against the real services.
func small(mode Mode) Config {
	return Config{
		Mode: mode, Events: 300, Publishers: 16, Workers: 2, Tenants: 2, Partitions: 4,
		ActionsPerEvent: 2, UpdateStatus: true, DrainTimeout: 30 * time.Second,
		PostgresURL: tu.DatabaseURL(), RedisURL: tu.RedisURL(),
	}
}

func TestModesVerifyClean(t *testing.T) {
	tu.SkipIfShort(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"publish", small(ModePublish)},
		{"redis-only", small(ModeRedisOnly)},
		{"worker with status", small(ModeWorker)},
		{"worker without status", func() Config { c := small(ModeWorker); c.UpdateStatus = false; return c }()},
		{"e2e open loop", func() Config { c := small(ModeE2E); c.Rate = 1000; return c }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := Run(tu.Context(t), tt.cfg)
			require.NoError(t, err)
			require.True(t, res.OK, res.Failure)
			require.EqualValues(t, 300, res.Published)
			require.Zero(t, res.Lost)
			require.Zero(t, res.Duplicates)
			require.True(t, res.Verify.Checked)
			require.EqualValues(t, 300, res.Verify.Entries)
			if runtime.GOOS == "linux" {
				// Every part's CPU is read; this process surely spent some.
				require.Positive(t, res.CPU[cpuBench], "cpu_us_per_event: %v", res.CPU)
				require.Contains(t, res.CPU, cpuRedis)
				require.Contains(t, res.CPU, cpuPostgres)
				if m := res.Machine; m != nil { // phases too short for the 10 ms ticks have none
					require.Positive(t, m.USPerEvent, "%+v", m)
					require.Positive(t, m.CeilingPerSec, "%+v", m)
					require.InDelta(t, 50, m.BusyPct, 50, "%+v", m)
				}
			}
			switch {
			case tt.cfg.Mode == ModeRedisOnly:
				require.Nil(t, res.Postgres, "redis-only writes nothing to PostgreSQL")
			case tt.cfg.UpdateStatus:
				// Every event wrote at least its row, payload included, to the WAL.
				require.NotNil(t, res.Postgres)
				require.Greater(t, res.Postgres.WALBytesPerEvent, float64(tt.cfg.WithDefaults().PayloadBytes), "%+v", res.Postgres)
				require.Positive(t, res.Postgres.MaxWALSizeMB)
			}
			switch tt.cfg.Mode {
			case ModeE2E:
				require.EqualValues(t, 300, res.Processed)
				require.EqualValues(t, 300, res.Verify.Completed)
				require.Positive(t, res.EndToEndLatency.P99)
				require.Positive(t, res.PublishLatency.P50)
				// Open loop: the generator's own lateness is reported,
				// and it is part of the publish latency.
				require.NotNil(t, res.SendLag)
				require.LessOrEqual(t, res.SendLag.P50, res.PublishLatency.P50)
			case ModeWorker:
				require.EqualValues(t, 300, res.Processed)
				require.Positive(t, res.ProcessedPerSec)
			default:
				require.Positive(t, res.PublishedPerSec)
				require.Nil(t, res.SendLag, "closed loop has no intended send times")
			}
			requireCleanedUp(t, res)
		})
	}
}

// TestVerificationCatchesLoss injects one event that is recorded as
// published but never reaches a stream: every mode must report it lost
// and fail.
func TestVerificationCatchesLoss(t *testing.T) {
	tu.SkipIfShort(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"publish", small(ModePublish)},
		{"redis-only", small(ModeRedisOnly)},
		{"worker with status", small(ModeWorker)},
		{"worker without status", func() Config { c := small(ModeWorker); c.UpdateStatus = false; return c }()},
		{"e2e", small(ModeE2E)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.InjectLost = 1
			cfg.DrainTimeout = 15 * time.Second
			res, err := Run(tu.Context(t), cfg)
			require.ErrorIs(t, err, ErrVerification)
			require.NotNil(t, res)
			require.False(t, res.OK)
			require.EqualValues(t, 1, res.Lost, "failure: %s", res.Failure)
			require.EqualValues(t, 301, res.Published)
			require.Contains(t, res.Failure, "1 lost events")
		})
	}
}

func TestVerifyCountsDuplicateExecutions(t *testing.T) {
	tu.SkipIfShort(t)
	ctx := tu.Context(t)
	cfg := small(ModeE2E).WithDefaults()
	cfg.Tenants, cfg.ActionsPerEvent = 1, 1
	e, err := newEnv(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.close(context.Background())) })
	schema := e.schemas[0]
	ev, err := newGenerator(e.schemas, 64).make(0, schema, time.Now().Add(-time.Second))
	require.NoError(t, err)
	_, err = e.pool.Exec(ctx, `INSERT INTO `+schema+`.events (id, event_type, aggregate_id, aggregate_type, status, created_at, processing_completed_at)
		VALUES ($1, $2, $3, 'user', 'completed', $4, now())`, ev.ID, ev.EventType, ev.AggregateID, ev.CreatedAt)
	require.NoError(t, err)
	for i := 0; i < 2; i++ { // the same action completed twice: one duplicate
		_, err = e.pool.Exec(ctx, `INSERT INTO `+schema+`.action_executions (event_id, action_id, status)
			SELECT $1, id, 'completed' FROM `+schema+`.actions`, ev.ID)
		require.NoError(t, err)
	}
	res := &Result{Mode: ModeE2E, Config: cfg, Published: 1}
	require.NoError(t, e.verifyProcessed(ctx, res))
	require.EqualValues(t, 1, res.Duplicates)
	require.Zero(t, res.Lost)
	require.InDelta(t, 1000, res.EndToEndLatency.P50, 200)
	res.judge()
	require.False(t, res.OK)
	require.Contains(t, res.Failure, "1 duplicate executions")
}

func TestBaselineRatios(t *testing.T) {
	tu.SkipIfShort(t)
	cfg := small(ModePublish)
	cfg.Baseline, cfg.BaselineEvents = true, 3000
	res, err := Run(tu.Context(t), cfg)
	require.NoError(t, err)
	for _, k := range []string{CeilingCopy, CeilingUpdate, CeilingXAdd, CeilingReadAck, CeilingPipeline} {
		require.Positive(t, res.Baseline[k], k)
	}
	require.Less(t, res.Baseline[CeilingPipeline], res.Baseline[CeilingCopy])
	require.Positive(t, res.Ratios["published_vs_copy"])
	if runtime.GOOS == "linux" {
		// Each probe's own CPU: PostgreSQL did the COPY and the UPDATE,
		// Redis the XADD and the reads.
		for _, k := range []string{CeilingCopy, CeilingUpdate} {
			require.Positive(t, res.BaselineCPU[k][cpuPostgres], "%s: %v", k, res.BaselineCPU[k])
		}
		for _, k := range []string{CeilingXAdd, CeilingReadAck} {
			require.Positive(t, res.BaselineCPU[k][cpuRedis], "%s: %v", k, res.BaselineCPU[k])
		}
		require.NotContains(t, res.BaselineCPU, CeilingPipeline, "an estimate, not a probe")
		for k, c := range res.BaselineCPU {
			if m, ok := c[cpuMachine]; ok { // probes too short for the 10 ms ticks have none
				require.Positive(t, m, "%s: %v", k, c)
			}
		}
	}
}

// TestNoRatiosForOpenLoop: an open-loop run's throughput is its offered
// rate, so it is not compared with the ceilings.
func TestNoRatiosForOpenLoop(t *testing.T) {
	b := map[string]float64{CeilingCopy: 100, CeilingUpdate: 100, CeilingXAdd: 100, CeilingReadAck: 100, CeilingPipeline: 25}
	closed := &Result{Mode: ModePublish, PublishedPerSec: 50}
	require.Equal(t, map[string]float64{"published_vs_copy": 0.5}, ratios(closed, b))
	open := &Result{Mode: ModePublish, PublishedPerSec: 50, Config: Config{Rate: 50}}
	require.Nil(t, ratios(open, b))
}

// requireCleanedUp checks that the run dropped its database and keys.
func requireCleanedUp(t *testing.T, res *Result) {
	t.Helper()
	ctx := tu.Context(t)
	rdb, _ := tu.NewRedis(t)
	keys, err := rdb.Keys(ctx, res.Prefix+":*").Result()
	require.NoError(t, err)
	require.Empty(t, keys)
	pool := tu.NewPool(t, tu.DatabaseURL())
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", res.Database).Scan(&n))
	require.Zero(t, n, "database %s left behind", res.Database)
}
