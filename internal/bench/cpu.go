package bench

import (
	"context"
	"errors"
	"fmt"
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
	// machine is the whole machine's processor time (ok false where
	// /proc/stat cannot be read).
	machine   machineTimes
	machineOK bool
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
	// cpuMachine, in the baseline probes' CPU only, is the whole machine's
	// (every process and the kernel; Result.Machine for the run itself).
	cpuMachine = "machine"
)

// sampleCPU reads every part it can.
func (e *env) sampleCPU(ctx context.Context, f workerSet) cpuSample {
	s := cpuSample{parts: map[string]time.Duration{}}
	s.machine, s.machineOK = machineCPU()
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
	r.Machine = start.machineUntil(end, events)
}

// machineUntil is machineActivity between two samples, nil where either
// could not read /proc/stat.
func (s cpuSample) machineUntil(end cpuSample, events int64) *MachineCPU {
	if !s.machineOK || !end.machineOK {
		return nil
	}
	return machineActivity(s.machine, end.machine, events)
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

// machineTimes is the whole machine's processor time, summed over its
// cores, from the "cpu" line of /proc/stat: work (user, nice, system, irq,
// softirq; the kernel counts guest time in user and nice already), steal
// (time the hypervisor gave to other machines), idle (idle and iowait) and
// of it iowait (idle while a disk read or write was outstanding).
type machineTimes struct {
	cores                     int
	work, steal, idle, iowait time.Duration
}

// errProcStat: /proc/stat did not hold the lines parseProcStat needs.
var errProcStat = errors.New("/proc/stat: no usable cpu line")

// parseProcStat reads machineTimes from the text of /proc/stat. Fields
// after steal (guest, guest_nice) are ignored; kernels too old to report
// steal count it as 0.
func parseProcStat(text string) (machineTimes, error) {
	var m machineTimes
	found := false
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			if _, err := strconv.Atoi(f[0][3:]); err == nil {
				m.cores++ // cpu0, cpu1, ...
			}
			continue
		}
		if len(f) < 8 { // cpu user nice system idle iowait irq softirq
			return machineTimes{}, fmt.Errorf("%w: %d fields", errProcStat, len(f)-1)
		}
		var ticks [8]int64 // user nice system idle iowait irq softirq steal
		for i := range ticks {
			if i+1 >= len(f) {
				break
			}
			n, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil || n < 0 {
				return machineTimes{}, fmt.Errorf("%w: field %d is %q", errProcStat, i+1, f[i+1])
			}
			ticks[i] = n
		}
		d := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
		m.work = d(ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6])
		m.idle = d(ticks[3] + ticks[4])
		m.iowait = d(ticks[4])
		m.steal = d(ticks[7])
		found = true
	}
	if !found || m.cores == 0 {
		return machineTimes{}, errProcStat
	}
	return m, nil
}

// minMachineTime is the least time of the cores (summed) between two
// samples that machineActivity judges: the counters tick every 10 ms, so
// a shorter phase would give a figure made mostly of rounding. At 50
// ticks the rounding is a few percent; `make bench`'s COPY probe (50,000
// rows, about a second of core time) stays above it.
const minMachineTime = 500 * time.Millisecond

// machineActivity is the machine's processor use between two samples
// (nil without events, or with less than minMachineTime in between).
func machineActivity(start, end machineTimes, events int64) *MachineCPU {
	work, steal, idle := end.work-start.work, end.steal-start.steal, end.idle-start.idle
	iowait := end.iowait - start.iowait
	total := work + steal + idle
	if events <= 0 || total < minMachineTime || work < 0 || steal < 0 || idle < 0 || iowait < 0 {
		return nil
	}
	m := &MachineCPU{
		Cores:      end.cores,
		BusyPct:    100 * float64(work) / float64(total),
		StealPct:   100 * float64(steal) / float64(total),
		IOWaitPct:  100 * float64(iowait) / float64(total),
		USPerEvent: float64(work.Microseconds()) / float64(events),
	}
	if m.USPerEvent > 0 {
		// The cores' time not taken by steal, all of it spent at this cost.
		available := float64(end.cores) * float64(work+idle) / float64(total)
		m.CeilingPerSec = available * 1e6 / m.USPerEvent
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
