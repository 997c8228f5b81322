package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/publisher"
)

var (
	workerOnce   sync.Once
	workerBin    string
	workerBinDir string
	workerErr    error
)

// buildWorker builds cmd/worker once for the tests that kill processes.
func buildWorker(t *testing.T) string {
	t.Helper()
	workerOnce.Do(func() {
		workerBinDir, workerErr = os.MkdirTemp("", "neo-worker-")
		if workerErr != nil {
			return
		}
		workerBin = filepath.Join(workerBinDir, "worker")
		out, err := exec.Command("go", "build", "-o", workerBin, "github.com/neo-events/neo-events/cmd/worker").CombinedOutput()
		if err != nil {
			workerErr = fmt.Errorf("go build cmd/worker: %v\n%s", err, out)
		}
	})
	require.NoError(t, workerErr)
	return workerBin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startProcess runs cmd/worker with the world's configuration in env.
func (w *world) startProcess(consumer string, extra ...string) *exec.Cmd {
	w.t.Helper()
	cmd := exec.Command(buildWorker(w.t))
	cmd.Env = append(os.Environ(),
		"NEO_EVENTS_REDIS_URL="+w.redis,
		"NEO_EVENTS_POSTGRES_URL="+w.dbURL,
		"NEO_EVENTS_STREAMS_PREFIX="+w.prefix,
		"NEO_EVENTS_STREAMS_PARTITIONS=4",
		"NEO_EVENTS_WORKER_GROUP="+w.group,
		"NEO_EVENTS_WORKER_CONSUMER="+consumer,
		"NEO_EVENTS_WORKER_CONCURRENCY=32",
		"NEO_EVENTS_WORKER_BLOCK=100ms",
		"NEO_EVENTS_WORKER_CLAIM_MIN_IDLE=2s",
		"NEO_EVENTS_WORKER_CLAIM_INTERVAL=200ms",
		"NEO_EVENTS_WORKER_SHUTDOWN_TIMEOUT=5s",
		"NEO_EVENTS_HTTP_ADDR="+freeAddr(w.t),
		"NEO_EVENTS_LOG_LEVEL=warn",
	)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(w.t, cmd.Start())
	w.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	})
	return cmd
}

// receiver is a webhook endpoint that counts calls per event and takes
// `delay` to answer.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	byID  map[string]int
	total atomic.Int64
}

func newReceiver(t *testing.T, delay time.Duration) *receiver {
	r := &receiver{byID: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		r.total.Add(1)
		time.Sleep(delay)
		r.mu.Lock()
		r.byID[req.Header.Get("webhook-id")]++
		r.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (w *world) addWebhook(schema, name, url string) {
	w.t.Helper()
	_, err := w.pool.Exec(context.Background(), fmt.Sprintf(`
		INSERT INTO %s.actions (name, action_type, handler_class, event_patterns, config, max_concurrent_executions, timeout_seconds, retry_policy)
		VALUES ($1, 'webhook', 'webhook', '{*}', jsonb_build_object('url', $2::text), 64, 10,
		        '{"max_retries": 5, "backoff_type": "fixed", "initial_delay_ms": 100}')`, event.QuoteIdent(schema)),
		name, url)
	require.NoError(w.t, err)
}

// completedOnce checks that every event is completed with exactly one
// completed execution per action.
func (w *world) completedOnce(evs []*event.Event, actions int) {
	w.t.Helper()
	rows := w.waitFinal(evs, 60*time.Second)
	for _, e := range evs {
		require.Equal(w.t, event.StatusCompleted, rows[e.ID].Status, "event %s", e.ID)
		done := 0
		for _, x := range w.executions(e) {
			if x.Status == store.ExecCompleted {
				done++
			}
		}
		require.Equal(w.t, actions, done, "completed executions of %s", e.ID)
	}
}

func TestSIGKILLMidBatchIsReclaimed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t, 150*time.Millisecond)
	w.addWebhook(event.AdminSchema, "hook", rcv.srv.URL)
	var evs []*event.Event
	for i := 0; i < 150; i++ {
		evs = append(evs, w.newEvent(event.AdminSchema, "users.created"))
	}
	w.publish(evs...)

	victim := w.startProcess("victim")
	require.Eventually(t, func() bool { return rcv.total.Load() >= 40 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, victim.Process.Signal(syscall.SIGKILL))
	_, _ = victim.Process.Wait()
	killedAt := rcv.total.Load()
	// What the victim had recorded as completed before it died.
	recorded := map[uuid.UUID]bool{}
	for _, e := range evs {
		row, err := store.GetEvent(context.Background(), w.pool, e.Schema, e.ID)
		require.NoError(t, err)
		recorded[e.ID] = row.Status == event.StatusCompleted
	}

	w.startWorker(w.config("rescuer"), nil)
	w.completedOnce(evs, 1)

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	dups, unrecorded := 0, 0
	for _, e := range evs {
		n := rcv.byID[e.ID.String()]
		require.GreaterOrEqual(t, n, 1)
		dups += n - 1
		if recorded[e.ID] {
			// An outcome recorded before the kill is never repeated.
			require.Equal(t, 1, n, "event %s was completed before the kill and was called again", e.ID)
		} else if n > 1 {
			unrecorded++
		}
	}
	// Only calls whose outcome was not recorded at the kill (in flight, or
	// done with their status write pending) may be repeated, each once.
	require.Equal(t, unrecorded, dups, "an event was re-sent more than once (%d calls had started at the kill)", killedAt)
	t.Logf("killed after %d calls; %d repeated, none recorded as completed before the kill", killedAt, dups)
}

func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t, 300*time.Millisecond)
	w.addWebhook(event.AdminSchema, "hook", rcv.srv.URL)
	var evs []*event.Event
	for i := 0; i < 80; i++ {
		evs = append(evs, w.newEvent(event.AdminSchema, "orders.paid"))
	}
	w.publish(evs...)

	p := w.startProcess("draining")
	require.Eventually(t, func() bool { return rcv.total.Load() >= 10 }, 30*time.Second, 10*time.Millisecond)
	start := time.Now()
	require.NoError(t, p.Process.Signal(syscall.SIGTERM))
	err := p.Wait()
	took := time.Since(start)
	require.NoError(t, err, "exit status 0 after SIGTERM")
	require.Less(t, took, 8*time.Second, "exited within worker.shutdown_timeout (5s) plus flush")

	w.startWorker(w.config("next"), nil)
	w.completedOnce(evs, 1)
}

// TestRedisRestartUnderLoad runs the pipeline on a test-owned Redis with
// AOF, restarts it mid-run, and shows every committed event completes.
func TestRedisRestartUnderLoad(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (scripts/devstack.sh installs it)")
	}
	w := newWorld(t)
	srv := startRedis(t)
	w.redis = srv.url
	own := redis.NewClient(&redis.Options{Addr: srv.addr, MaxRetries: 5})
	t.Cleanup(func() { _ = own.Close() })
	w.startPublisher(own)
	w.addAction(event.AdminSchema, "ok", "ok", []string{"*"}, "")
	w.startWorker(w.config("w1"), nil)
	w.startWorker(w.config("w2"), nil)

	var evs []*event.Event
	publishSome := func(n int) {
		for i := 0; i < n; i++ {
			e := w.newEvent(event.AdminSchema, "users.created")
			// During the outage Publish commits and reports ErrRelayPending;
			// the relay delivers those later.
			if err := w.pub.Publish(context.Background(), e.Schema, e); err == nil || isRelayPending(err) {
				evs = append(evs, e)
			} else {
				t.Fatalf("publish: %v", err)
			}
		}
	}
	publishSome(200)
	srv.restart(t)
	publishSome(200)
	w.completedOnce(evs, 1)
}

type redisServer struct {
	cmd  *exec.Cmd
	port int
	addr string
	url  string
	dir  string
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	addr := freeAddr(t)
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	s := &redisServer{port: port, addr: addr, url: "redis://" + addr + "/0", dir: t.TempDir()}
	s.start(t)
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *redisServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir", s.dir)
	require.NoError(t, s.cmd.Start())
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	require.Eventually(t, func() bool { return c.Ping(context.Background()).Err() == nil }, 10*time.Second, 20*time.Millisecond)
}

func (s *redisServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_, _ = s.cmd.Process.Wait()
		s.cmd = nil
	}
}

func (s *redisServer) restart(t *testing.T) {
	s.stop()
	time.Sleep(300 * time.Millisecond)
	s.start(t)
}

func isRelayPending(err error) bool { return errors.Is(err, publisher.ErrRelayPending) }
