package bench

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// cpuSample is the processor time spent so far by each part of the system;
// a part that cannot be read is absent. PostgreSQL's is kept per process:
// backends come and go (other clients' connections), and only the
// processes alive at both samples can be compared.
type cpuSample struct {
	parts    map[string]time.Duration
	postgres map[int]time.Duration
	wal      walSample // the PostgreSQL server's WAL and checkpoints
}

// CPU parts: the bench process (the load generator and the publisher, and
// the workers unless they run as processes), the worker processes, the
// Redis server (INFO cpu) and every PostgreSQL process of this machine
// (when the server is on a loopback address: its backends, WAL writer and
// checkpointer).
const (
	cpuBench    = "bench"
	cpuWorkers  = "workers"
	cpuRedis    = "redis"
	cpuPostgres = "postgres"
)

// sampleCPU reads every part it can.
func (e *env) sampleCPU(ctx context.Context, f workerSet) cpuSample {
	s := cpuSample{parts: map[string]time.Duration{}}
	if d, ok := selfCPU(); ok {
		s.parts[cpuBench] = d
	}
	if p, ok := f.(*procRun); ok {
		var sum time.Duration
		for _, c := range p.cmds {
			d, _ := procCPU(c.Process.Pid)
			sum += d
		}
		s.parts[cpuWorkers] = sum
	}
	if d, ok := redisCPU(ctx, e.rdb); ok {
		s.parts[cpuRedis] = d
	}
	if loopbackURL(e.cfg.PostgresURL) {
		s.postgres = commandCPU("postgres")
	}
	if e.cfg.Mode != ModeRedisOnly {
		s.wal = sampleWAL(ctx, e.pool)
	}
	return s
}

// account sets the run's CPU and PostgreSQL activity per event between
// two samples.
func (r *Result) account(start, end cpuSample, events int64) {
	r.CPU = perEvent(start, end, events)
	r.Postgres = walActivity(start.wal, end.wal, events)
}

// perEvent is the CPU each part spent between two samples, in
// microseconds per event (nil without events).
func perEvent(start, end cpuSample, events int64) map[string]float64 {
	if events <= 0 {
		return nil
	}
	m := map[string]float64{}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(events) }
	for k, a := range start.parts {
		if b, ok := end.parts[k]; ok && b >= a {
			m[k] = per(b - a)
		}
	}
	if len(start.postgres) > 0 && len(end.postgres) > 0 {
		// A process that started in between counts from zero; one that
		// ended in between is lost (an undercount, never a negative).
		var sum time.Duration
		for pid, b := range end.postgres {
			if a := start.postgres[pid]; b >= a {
				sum += b - a
			}
		}
		m[cpuPostgres] = per(sum)
	}
	return m
}

// redisCPU is the Redis server's used_cpu_user + used_cpu_sys.
func redisCPU(ctx context.Context, rdb *redis.Client) (time.Duration, bool) {
	if rdb == nil {
		return 0, false
	}
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, false
	}
	var sum float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		sum += x
		found++
	}
	return time.Duration(sum * float64(time.Second)), found == 2
}

// loopbackURL reports whether a PostgreSQL URL names a loopback host (so
// its processes are this machine's).
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" || h == "" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
