package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// workerSet is what a run drives: in-process fleet members (fleetRun) or
// worker processes (procRun).
type workerSet interface {
	// processed is how many events the workers finished successfully.
	processed() int64
	// flushes summarizes the workers' status writes so far (nil: none).
	flushes(processed int64) *FlushStats
	// stop shuts the workers down, flushing their status writes.
	stop() error
}

// launchWorkers starts cfg.Workers workers: processes of cfg.WorkerBin
// when it is set, in-process fleet members otherwise.
func (e *env) launchWorkers(ctx context.Context) (workerSet, error) {
	if e.cfg.WorkerBin != "" {
		return e.startProcs(ctx)
	}
	return e.startWorkers()
}

// procRun is cfg.Workers processes of the worker binary (cmd/worker), each
// configured through NEO_EVENTS_* variables to the bench's database, key
// prefix and group. Their memory is measured apart from the bench's own
// (the load generator and the publisher), which is what the issue's "worker
// memory flat" target is about.
type procRun struct {
	cmds   []*exec.Cmd
	exited []chan struct{} // closed when the process has been waited for
	errs   []error         // each process's exit error, set before exited closes
	addrs  []string        // host:port of each /metrics
	client *http.Client

	mu       sync.Mutex
	last     int64
	lastRead time.Time
	// lastFlush is the status flush histogram of the last full scrape.
	lastFlush flushHist
	rssStart  float64 // sum over the processes once they were ready
	anonStart float64 // its anonymous part
}

// procStopTimeout bounds a worker's graceful shutdown after SIGTERM.
const procStopTimeout = 30 * time.Second

func (e *env) startProcs(ctx context.Context) (*procRun, error) {
	p := &procRun{client: &http.Client{Timeout: 2 * time.Second}}
	for i := 0; i < e.cfg.Workers; i++ {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, errors.Join(err, p.stop())
		}
		c := e.workerConfig(i)
		cmd := exec.Command(e.cfg.WorkerBin)
		cmd.Env = append(os.Environ(),
			"NEO_EVENTS_REDIS_URL="+c.Redis.URL,
			"NEO_EVENTS_POSTGRES_URL="+c.Postgres.URL,
			"NEO_EVENTS_STREAMS_PREFIX="+c.Streams.Prefix,
			"NEO_EVENTS_STREAMS_PARTITIONS="+strconv.Itoa(c.Streams.Partitions),
			"NEO_EVENTS_WORKER_GROUP="+c.Worker.Group,
			"NEO_EVENTS_WORKER_CONSUMER="+c.Worker.Consumer,
			"NEO_EVENTS_WORKER_CONCURRENCY="+strconv.Itoa(c.Worker.Concurrency),
			"NEO_EVENTS_WORKER_BLOCK="+c.Worker.Block.String(),
			"NEO_EVENTS_WORKER_CLAIM_INTERVAL="+c.Worker.ClaimInterval.String(),
			"NEO_EVENTS_WORKER_UPDATE_STATUS="+strconv.FormatBool(c.Worker.UpdateStatus),
			"NEO_EVENTS_HTTP_ADDR="+addr,
			"NEO_EVENTS_LOG_LEVEL=warn",
		)
		stopWithParent(cmd)
		cmd.Stdout = io.Discard
		cmd.Stderr = &prefixWriter{w: os.Stderr, prefix: fmt.Sprintf("[worker %d] ", i)}
		if err := cmd.Start(); err != nil {
			return nil, errors.Join(fmt.Errorf("start %s: %w", e.cfg.WorkerBin, err), p.stop())
		}
		exited := make(chan struct{})
		p.cmds, p.exited, p.addrs = append(p.cmds, cmd), append(p.exited, exited), append(p.addrs, addr)
		p.errs = append(p.errs, nil)
		go func() {
			p.errs[i] = cmd.Wait()
			close(exited)
		}()
	}
	if err := p.waitReady(ctx, 30*time.Second); err != nil {
		return nil, errors.Join(err, p.stop())
	}
	p.rssStart, p.anonStart = p.rss()
	return p, nil
}

// waitReady waits for every worker's /readyz.
func (p *procRun) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for i, addr := range p.addrs {
		for {
			resp, err := p.client.Get("http://" + addr + "/readyz")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-p.exited[i]:
				return fmt.Errorf("worker %d exited before it was ready: %v", i, p.errs[i])
			default:
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("worker %d not ready after %s (last error: %v)", i, limit, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// processed sums worker_events_total{outcome="success"} scraped from every
// worker, at most every 100ms (the drain polls far more often).
func (p *procRun) processed() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.lastRead) < 100*time.Millisecond {
		return p.last
	}
	var n float64
	var h flushHist
	for _, addr := range p.addrs {
		v, err := p.scrape(addr, &h)
		if err != nil {
			// A worker that stopped answering: keep the last total, the
			// drain's stall detection ends the run if nothing moves.
			return p.last
		}
		n += v
	}
	p.last, p.lastRead, p.lastFlush = int64(n), time.Now(), h
	return p.last
}

// flushes returns the status flush summary of the last scrape (the
// processes are gone after stop).
func (p *procRun) flushes(processed int64) *FlushStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastFlush.stats(processed)
}

func (p *procRun) scrape(addr string, h *flushHist) (float64, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", addr, err)
	}
	// Uncompressed: the worker would otherwise allocate a gzip compressor
	// (about 350 KB) for every scrape, once a second or more, garbage the
	// bench itself put into the processes it measures.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	return successCount(resp.Body, h)
}

// successCount reads worker_events_total{outcome="success"} from a
// Prometheus text exposition, and adds its status flush histogram to h
// (when h is not nil).
func successCount(r io.Reader, h *flushHist) (float64, error) {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return 0, fmt.Errorf("parse metrics: %w", err)
	}
	var n float64
	for _, mf := range mfs {
		n += successes(mf)
		if h != nil {
			h.add(mf)
		}
	}
	return n, nil
}

// rss is the summed resident set of the worker processes in MiB, and its
// anonymous part (heap, stacks: what the processes allocated, without the
// pages of the mapped binary, which grow as code paths are first run).
func (p *procRun) rss() (total, anon float64) {
	for i, c := range p.cmds {
		select {
		case <-p.exited[i]:
		default:
			t, a := rssOf(c.Process.Pid)
			total, anon = total+t, anon+a
		}
	}
	return total, anon
}

// stop sends SIGTERM to every worker (they drain and flush), waits up to
// procStopTimeout, then kills what is left.
func (p *procRun) stop() error {
	for i, c := range p.cmds {
		select {
		case <-p.exited[i]:
		default:
			_ = c.Process.Signal(syscall.SIGTERM)
		}
	}
	var errs []error
	for i, c := range p.cmds {
		select {
		case <-p.exited[i]:
		case <-time.After(procStopTimeout):
			_ = c.Process.Kill()
			<-p.exited[i]
			errs = append(errs, fmt.Errorf("worker %d did not stop within %s; killed", i, procStopTimeout))
			continue
		}
		if p.errs[i] != nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", i, p.errs[i]))
		}
	}
	return errors.Join(errs...)
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port free right now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// rssOf reads VmRSS and RssAnon of a process in MiB (0 if they cannot be
// read).
func rssOf(pid int) (total, anon float64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			total = kibToMiB(rest)
		} else if rest, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			anon = kibToMiB(rest)
		}
	}
	return total, anon
}

func kibToMiB(field string) float64 {
	kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(field), " kB"), 64)
	return kb / 1024
}

// prefixWriter prefixes each write (a worker's log lines) so they can be
// told from the bench's own.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (pw *prefixWriter) Write(b []byte) (int, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if _, err := io.WriteString(pw.w, pw.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}
