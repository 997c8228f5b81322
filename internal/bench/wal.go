package bench

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresActivity is what the PostgreSQL server wrote to its WAL and how
// often it checkpointed during the measured phase. Both are the whole
// server's (every database, other clients too), like its CPU.
//
// Why it is reported: every event costs a few KB of WAL, and a server
// whose max_wal_size is small for the rate checkpoints every few tens of
// seconds. After each checkpoint starts, the first change to every page
// writes the whole page to the WAL again, and commits slow down for a
// while: the latency spikes of a long run. CheckpointsRequested counts
// the checkpoints forced by WAL volume (or by a CHECKPOINT command, such
// as CREATE DATABASE's), not by checkpoint_timeout.
type PostgresActivity struct {
	WALBytes         int64   `json:"wal_bytes"`
	WALBytesPerEvent float64 `json:"wal_bytes_per_event"`
	WALMBPerSec      float64 `json:"wal_mb_per_sec"`
	Checkpoints      int64   `json:"checkpoints"`
	// CheckpointsRequested is the part of Checkpoints not started by
	// checkpoint_timeout.
	CheckpointsRequested int64 `json:"checkpoints_requested"`
	// MaxWALSizeMB and CheckpointTimeoutSec are the server's settings.
	MaxWALSizeMB         int64 `json:"max_wal_size_mb"`
	CheckpointTimeoutSec int64 `json:"checkpoint_timeout_sec"`
}

// walSample is the server's WAL position and checkpoint counters at one
// moment; ok is false when they could not be read.
type walSample struct {
	at                   time.Time
	lsn                  int64 // bytes of WAL written since the cluster began
	timed, requested     int64
	maxWALMB, timeoutSec int64
	ok                   bool
}

// The checkpoint counters moved from pg_stat_bgwriter to
// pg_stat_checkpointer in PostgreSQL 17.
const (
	// walSQL reads the WAL position, the settings in pg_settings's units
	// (max_wal_size in MB, checkpoint_timeout in seconds) and the server
	// version, which says where the checkpoint counters are.
	walSQL = `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8,
       (SELECT setting::int8 FROM pg_settings WHERE name = 'max_wal_size'),
       (SELECT setting::int8 FROM pg_settings WHERE name = 'checkpoint_timeout'),
       current_setting('server_version_num')::int`
	checkpointsSQL   = `SELECT num_timed, num_requested FROM pg_stat_checkpointer`
	checkpointsSQL16 = `SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter`
)

// sampleWAL reads the server's WAL position and checkpoint counters. A
// server that refuses (a standby, missing privileges) gives !ok, and the
// run reports no activity instead of failing.
func sampleWAL(ctx context.Context, pool *pgxpool.Pool) walSample {
	s := walSample{at: time.Now()}
	if pool == nil {
		return s
	}
	var version int
	if err := pool.QueryRow(ctx, walSQL).Scan(&s.lsn, &s.maxWALMB, &s.timeoutSec, &version); err != nil {
		return s
	}
	q := checkpointsSQL
	if version < 170000 {
		q = checkpointsSQL16
	}
	if err := pool.QueryRow(ctx, q).Scan(&s.timed, &s.requested); err != nil {
		return s
	}
	s.ok = true
	return s
}

// walActivity is the activity between two samples; nil when either could
// not be read or there were no events.
func walActivity(start, end walSample, events int64) *PostgresActivity {
	if !start.ok || !end.ok || events <= 0 || end.lsn < start.lsn {
		return nil
	}
	a := &PostgresActivity{
		WALBytes:             end.lsn - start.lsn,
		Checkpoints:          (end.timed - start.timed) + (end.requested - start.requested),
		CheckpointsRequested: end.requested - start.requested,
		MaxWALSizeMB:         end.maxWALMB,
		CheckpointTimeoutSec: end.timeoutSec,
	}
	a.WALBytesPerEvent = float64(a.WALBytes) / float64(events)
	if d := end.at.Sub(start.at).Seconds(); d > 0 {
		a.WALMBPerSec = float64(a.WALBytes) / (1 << 20) / d
	}
	return a
}
