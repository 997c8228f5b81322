package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is the JSON object of DESIGN §6, plus what an operator needs to
// judge it.
type Result struct {
	Mode            Mode        `json:"mode"`
	Config          Config      `json:"config"`
	Published       int64       `json:"published"`
	PublishedPerSec float64     `json:"published_per_sec"`
	Processed       int64       `json:"processed"`
	ProcessedPerSec float64     `json:"processed_per_sec"`
	Lost            int64       `json:"lost"`
	Duplicates      int64       `json:"duplicates"`
	Errors          int64       `json:"errors"`
	PublishLatency  Percentiles `json:"publish_latency_ms"`
	EndToEndLatency Percentiles `json:"end_to_end_latency_ms"`
	// SendLag (open loop only) is how late the load generator started
	// batches after their intended send time; it is included in
	// PublishLatency. Most of a publish p99 that SendLag also shows is
	// the machine's, not the publisher's.
	SendLag *Percentiles `json:"send_lag_ms,omitempty"`
	// StatusFlush summarizes the workers' status write transactions
	// (worker and e2e modes with status writes).
	StatusFlush *FlushStats `json:"status_flush,omitempty"`
	// CPU is the processor time each part spent in the measured phase, in
	// microseconds per event (processed in worker and e2e modes, published
	// otherwise): "bench" (this process: the load generator, the
	// publisher, and the workers unless they run as processes), "workers"
	// (--worker-bin), "redis" (INFO cpu) and "postgres" (every PostgreSQL
	// process of this machine, with a loopback server). Unlike events per
	// second it hardly depends on how busy the machine is, so it compares
	// code across machines and noisy runs.
	CPU map[string]float64 `json:"cpu_us_per_event,omitempty"`
	// Machine is the whole machine's processor use in the same phase,
	// every process and the kernel counted (Linux: /proc/stat).
	Machine *MachineCPU `json:"machine_cpu,omitempty"`
	// Postgres is the PostgreSQL server's WAL and checkpoints in the same
	// phase (not in redis-only mode).
	Postgres *PostgresActivity `json:"postgres,omitempty"`
	// Verification details: what the checks counted.
	Verify Verification `json:"verification"`
	// Baseline holds the raw ceilings (rows or entries per second) and
	// Ratios this run's throughput divided by the relevant ceiling.
	Baseline map[string]float64 `json:"baseline,omitempty"`
	Ratios   map[string]float64 `json:"baseline_ratios,omitempty"`
	// BaselineCPU is each probe's CPU per row or entry, by part (as CPU,
	// and "machine": every process and the kernel, as Machine): what the
	// step costs alone, to hold against this run's CPU per event.
	// A ratio far below 1 whose run spent about the probe's CPU per event
	// on the step was bound by the machine's cores, not by the code.
	BaselineCPU map[string]map[string]float64 `json:"baseline_cpu_us_per_row,omitempty"`
	// BehindAtLoadEnd (e2e) is how many published events the workers had
	// not finished when publishing stopped. Far above what a second of
	// processing covers, the workers were slower than the publishers and
	// end-to-end latency is mostly the wait in that queue.
	BehindAtLoadEnd int64 `json:"behind_at_load_end,omitempty"`
	// LoadSeconds is the load phase; DrainSeconds the time workers needed
	// to finish (worker, e2e).
	LoadSeconds  float64 `json:"load_seconds"`
	DrainSeconds float64 `json:"drain_seconds,omitempty"`
	// RSS of the bench process (workers included unless they run as
	// processes) in MiB.
	RSS RSS `json:"rss_mib"`
	// WorkerRSS sums the worker processes' RSS in MiB (Config.WorkerBin
	// only; Start is taken once they are ready).
	WorkerRSS *RSS `json:"worker_rss_mib,omitempty"`
	// WorkerAnonRSS is WorkerRSS's anonymous part (RssAnon: heap, stacks),
	// without the mapped binary's pages, which grow as code paths are first
	// run: a leak shows here.
	WorkerAnonRSS *RSS   `json:"worker_anon_rss_mib,omitempty"`
	Database      string `json:"database"`
	Prefix        string `json:"prefix"`
	OK            bool   `json:"ok"`
	Failure       string `json:"failure,omitempty"`
}

// MachineCPU is how busy the machine's processors were in the measured
// phase, and what that says about the rate they allow.
type MachineCPU struct {
	Cores int `json:"cores"`
	// BusyPct is the share of the cores' time spent working, by any
	// process or the kernel; StealPct the share a hypervisor gave to other
	// machines.
	BusyPct  float64 `json:"busy_pct"`
	StealPct float64 `json:"steal_pct"`
	// IOWaitPct is the share idle while disk I/O was outstanding (part of
	// the idle time): a run with idle cores and much of it is waiting for
	// the disk, such as PostgreSQL's commits.
	IOWaitPct float64 `json:"iowait_pct"`
	// USPerEvent is all that work in microseconds per event: CPU's parts
	// and whatever else ran (the kernel's network and disk work, other
	// processes).
	USPerEvent float64 `json:"cpu_us_per_event"`
	// CeilingPerSec is the events per second the cores (less steal) allow
	// at USPerEvent: a run near it (BusyPct near 100) was bound by the
	// processors, and only less CPU per event, or more cores, makes it
	// faster.
	CeilingPerSec float64 `json:"ceiling_per_sec"`
}

// Verification is what the post-run checks found.
type Verification struct {
	Checked bool `json:"checked"`
	// Rows in the events tables and entries in the streams.
	Rows    int64 `json:"rows"`
	Entries int64 `json:"entries"`
	// Completed events and completed (event, action) pairs.
	Completed         int64 `json:"completed"`
	MissingExecutions int64 `json:"missing_executions"`
	// Backlog of the bench's group (lag + pending) after the drain.
	Backlog int64 `json:"backlog"`
}

// RSS samples the resident set size of the process.
type RSS struct {
	Start float64 `json:"start"`
	// Warm is sampled 30s into the run (0 for shorter runs): growth from
	// Warm to End is the leak signal, Start to Warm is warm-up.
	Warm float64 `json:"warm"`
	End  float64 `json:"end"`
	Max  float64 `json:"max"`
	// TrendPct is the growth over the run after warm-up of a least-squares
	// line through the once-a-second samples, in percent of the line's
	// value at warm-up (runs with at least trendMinSamples samples after
	// warm-up). A Go process's RSS is a sawtooth of several MiB (the heap
	// grows to its goal, is collected, and the scavenger returns pages
	// slowly), so End against Warm, two single samples, says as much about
	// where each fell on a tooth as about growth; the fitted line does not.
	TrendPct *float64 `json:"trend_growth_pct,omitempty"`
	// FirstMinute and LastMinute are the mean of the samples in the first
	// and the last minute after warm-up (runs with at least two minutes
	// of samples after warm-up).
	FirstMinute float64 `json:"first_minute_mean,omitempty"`
	LastMinute  float64 `json:"last_minute_mean,omitempty"`

	samples []rssSample // after warm-up, for the trend
}

type rssSample struct{ t, v float64 } // seconds into the run, MiB

// trendMinSamples is how many samples after warm-up (one a second) a trend
// needs: fewer say little about ten minutes.
const trendMinSamples = 60

// sample records one reading taken at elapsed into the run.
func (r *RSS) sample(v float64, elapsed time.Duration) {
	r.Max = max(r.Max, v)
	if elapsed < warmup {
		return
	}
	if r.Warm == 0 {
		r.Warm = v
	}
	r.samples = append(r.samples, rssSample{t: elapsed.Seconds(), v: v})
}

// summarize sets TrendPct, FirstMinute and LastMinute from the samples.
func (r *RSS) summarize() {
	s := r.samples
	if len(s) < trendMinSamples {
		return
	}
	n := float64(len(s))
	var st, sv float64
	for _, x := range s {
		st += x.t
		sv += x.v
	}
	mt, mv := st/n, sv/n
	var cov, vt float64
	for _, x := range s {
		cov += (x.t - mt) * (x.v - mv)
		vt += (x.t - mt) * (x.t - mt)
	}
	if vt == 0 {
		return
	}
	slope := cov / vt
	first, last := s[0].t, s[len(s)-1].t
	at := func(t float64) float64 { return mv + slope*(t-mt) }
	if v0 := at(first); v0 > 0 {
		pct := 100 * (at(last) - v0) / v0
		r.TrendPct = &pct
	}
	if last-first >= 120 {
		r.FirstMinute = meanBetween(s, first, first+60)
		r.LastMinute = meanBetween(s, last-60, last+1)
	}
}

// meanBetween is the mean of the samples with from <= t < to.
func meanBetween(s []rssSample, from, to float64) float64 {
	var sum float64
	n := 0
	for _, x := range s {
		if x.t >= from && x.t < to {
			sum += x.v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// growth is End against Warm, as a signed percentage, with the fitted
// trend and the first and last minutes' means where the run was long
// enough for them.
func (r *RSS) growth() string {
	if r.Warm <= 0 {
		return "n/a (run shorter than 30s)"
	}
	g := fmt.Sprintf("%+.1f%%", 100*(r.End-r.Warm)/r.Warm)
	if r.TrendPct != nil {
		g += fmt.Sprintf("  fitted trend %+.1f%%", *r.TrendPct)
	}
	if r.FirstMinute > 0 {
		g += fmt.Sprintf("  first→last minute %.1f→%.1f", r.FirstMinute, r.LastMinute)
	}
	return g
}

// WriteJSON writes r as exactly one JSON object and a newline.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteTable writes the human summary.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	c := r.Config
	row("mode", "%s", r.Mode)
	row("config", "publishers=%d batch=%d workers=%d tenants=%d partitions=%d payload=%dB actions/event=%d update_status=%v rate=%s",
		c.Publishers, c.Batch, c.Workers, c.Tenants, c.Partitions, c.PayloadBytes, c.ActionsPerEvent, c.UpdateStatus, rateText(c.Rate))
	if c.GC != "" {
		row("go gc", "%s", c.GC)
	}
	if r.Mode == ModeWorker {
		row("pre-filled", "%d", r.Published)
	} else {
		row("published", "%d (%.0f/s over %.2fs)", r.Published, r.PublishedPerSec, r.LoadSeconds)
	}
	if r.Mode == ModeWorker || r.Mode == ModeE2E {
		row("processed", "%d (%.0f/s, drain %.2fs)", r.Processed, r.ProcessedPerSec, r.DrainSeconds)
		if r.Mode == ModeE2E && r.ProcessedPerSec > 0 && float64(r.BehindAtLoadEnd) > r.ProcessedPerSec/2 {
			row("note", "workers fell %d events behind the publishers (%.1fs of processing): end-to-end latency is mostly queueing; offer a --rate they keep up with",
				r.BehindAtLoadEnd, float64(r.BehindAtLoadEnd)/r.ProcessedPerSec)
		}
	}
	if r.Mode != ModeWorker {
		row("publish latency ms", "p50 %.2f  p95 %.2f  p99 %.2f", r.PublishLatency.P50, r.PublishLatency.P95, r.PublishLatency.P99)
	}
	if r.SendLag != nil {
		row("  of it generator lag", "p50 %.2f  p95 %.2f  p99 %.2f", r.SendLag.P50, r.SendLag.P95, r.SendLag.P99)
	}
	if r.Mode == ModeE2E {
		row("end-to-end ms", "p50 %.2f  p95 %.2f  p99 %.2f", r.EndToEndLatency.P50, r.EndToEndLatency.P95, r.EndToEndLatency.P99)
	}
	if f := r.StatusFlush; f != nil {
		row("status flushes", "%d (%.0f events each)  ms mean %.1f  p50 %.1f  p99 %.1f",
			f.Flushes, f.EventsPerFlush, f.MeanMS, f.P50MS, f.P99MS)
	}
	if len(r.CPU) > 0 {
		row("cpu µs/event", "%s", cpuParts(r.CPU))
	}
	if m := r.Machine; m != nil {
		row("machine cpu", "%d cores %.0f %% busy (iowait %.0f %%, steal %.0f %%), %.1f µs/event in all: at most %.0f/s at this cost",
			m.Cores, m.BusyPct, m.IOWaitPct, m.StealPct, m.USPerEvent, m.CeilingPerSec)
	}
	if a := r.Postgres; a != nil {
		row("postgres wal", "%.1f KB/event (%.1f MB/s)  checkpoints %d (%d forced by WAL volume or command; max_wal_size %d MB, checkpoint_timeout %ds)",
			a.WALBytesPerEvent/1024, a.WALMBPerSec, a.Checkpoints, a.CheckpointsRequested, a.MaxWALSizeMB, a.CheckpointTimeoutSec)
	}
	row("lost / duplicates / errors", "%d / %d / %d", r.Lost, r.Duplicates, r.Errors)
	v := r.Verify
	row("verification", "rows=%d entries=%d completed=%d missing_executions=%d backlog=%d",
		v.Rows, v.Entries, v.Completed, v.MissingExecutions, v.Backlog)
	for _, k := range sortedKeys(r.Baseline) {
		if c := r.BaselineCPU[k]; len(c) > 0 {
			row("baseline "+k, "%.0f/s  (cpu µs/row: %s)", r.Baseline[k], cpuParts(c))
			continue
		}
		row("baseline "+k, "%.0f/s", r.Baseline[k])
	}
	for _, k := range sortedKeys(r.Ratios) {
		row("ratio "+k, "%.2f", r.Ratios[k])
	}
	row("rss MiB", "start %.0f  warm(30s) %.0f  end %.0f  max %.0f", r.RSS.Start, r.RSS.Warm, r.RSS.End, r.RSS.Max)
	if w := r.WorkerRSS; w != nil {
		row("worker processes rss MiB", "start %.0f  warm(30s) %.0f  end %.0f  max %.0f  growth warm→end %s",
			w.Start, w.Warm, w.End, w.Max, w.growth())
	}
	if w := r.WorkerAnonRSS; w != nil {
		row("worker anon (RssAnon) MiB", "start %.0f  warm(30s) %.0f  end %.0f  max %.0f  growth warm→end %s",
			w.Start, w.Warm, w.End, w.Max, w.growth())
	}
	verdict := "OK"
	if !r.OK {
		verdict = "FAILED: " + r.Failure
	}
	row("result", "%s", verdict)
	return tw.Flush()
}

func rateText(r float64) string {
	if r == 0 {
		return "max"
	}
	return fmt.Sprintf("%.0f/s", r)
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// cpuParts is "part µs  part µs ..." in the order of the parts' names.
func cpuParts(m map[string]float64) string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, m[k]))
	}
	return strings.Join(parts, "  ")
}
