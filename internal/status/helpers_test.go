package status_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/status"
	"github.com/neo-events/neo-events/internal/store"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

// env is one test's database: a migrated database with a tenant schema
// and one action, reached directly (pool) and by the writer (dbURL).
type env struct {
	ctx    context.Context
	pool   *pgxpool.Pool
	dbURL  string
	schema string
	action uuid.UUID
}

func newEnv(t *testing.T) *env {
	t.Helper()
	tu.SkipIfShort(t)
	ctx := tu.Context(t)
	dbURL := tu.NewDatabase(t)
	pool := tu.NewPool(t, dbURL)
	_, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	schema, err := store.CreateTenant(ctx, pool, strings.TrimPrefix(tu.RandomName("s"), "s_"))
	require.NoError(t, err)
	e := &env{ctx: ctx, pool: pool, dbURL: dbURL, schema: schema}
	e.action = e.newAction(t, "welcome")
	return e
}

func (e *env) newAction(t *testing.T, name string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	err := e.pool.QueryRow(e.ctx, "INSERT INTO "+event.QuoteIdent(e.schema)+
		".actions (name, action_type, handler_class, event_patterns) VALUES ($1, 'webhook', 'webhook', '{*}') RETURNING id",
		name).Scan(&id)
	require.NoError(t, err)
	return id
}

// newEvent returns a valid event of e's schema; stored says whether its
// row is inserted first (as the Python publisher does) or left missing (an
// XADD-only producer).
func (e *env) newEvent(t testing.TB, stored bool) *event.Event {
	t.Helper()
	ev, err := event.New(e.schema, "users.created", "user", uuid.New(), json.RawMessage(`{"n": 1}`))
	require.NoError(t, err)
	if stored {
		_, err := store.InsertEvents(e.ctx, e.pool, e.schema, []*event.Event{ev})
		require.NoError(t, err)
	}
	return ev
}

func (e *env) count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(e.ctx, strings.ReplaceAll(sql, "S.", event.QuoteIdent(e.schema)+"."), args...).Scan(&n))
	return n
}

// done is the update a worker writes when the event's one action succeeded.
func done(t testing.TB, schema string, ev *event.Event, action uuid.UUID) status.Update {
	t.Helper()
	xid, err := event.NewID()
	require.NoError(t, err)
	start := event.Now()
	end := start.Add(7 * time.Millisecond)
	ms := int32(7)
	return status.Update{
		Schema: schema,
		Event:  ev,
		Status: store.StatusUpdate{ID: ev.ID, Status: event.StatusCompleted,
			ProcessingStartedAt: start, ProcessingCompletedAt: end, ProcessingDurationMS: &ms},
		Executions: []store.Execution{{ID: xid, EventID: ev.ID, ActionID: action, Status: store.ExecCompleted,
			QueuedAt: start, StartedAt: start, CompletedAt: end, DurationMS: &ms, Attempt: 1, WorkerID: "w1"}},
	}
}

// newWriter returns a writer with its own metrics, closed at the end.
func newWriter(t *testing.T, pool *pgxpool.Pool, opt status.Options) (*status.Writer, *metrics.Worker) {
	t.Helper()
	m := metrics.NewWorker(prometheus.NewRegistry())
	opt.Metrics, opt.Group = m, "g"
	w := status.New(pool, opt)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
	return w, m
}

func flushes(m *metrics.Worker, outcome string) int {
	var d dto.Metric
	if err := m.StatusWritesTotal.WithLabelValues("g", outcome).Write(&d); err != nil {
		panic(err)
	}
	return int(d.GetCounter().GetValue())
}

// flushTimings is how many flushes worker_status_flush_duration_seconds observed.
func flushTimings(m *metrics.Worker) int {
	var d dto.Metric
	h := m.StatusFlushDuration.WithLabelValues("g").(prometheus.Histogram)
	if err := h.Write(&d); err != nil {
		panic(err)
	}
	return int(d.GetHistogram().GetSampleCount())
}

func queueLength(m *metrics.Worker) int {
	var d dto.Metric
	if err := m.StatusQueueLength.WithLabelValues("g").Write(&d); err != nil {
		panic(err)
	}
	return int(d.GetGauge().GetValue())
}

// proxy is a TCP proxy in front of PostgreSQL that a test can take down
// (it drops every connection and refuses new ones) and bring back.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.pipe(c)
	}
}

// track registers c unless the proxy is down.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		_ = c.Close()
	}
}

func (p *proxy) pipe(c net.Conn) {
	defer p.wg.Done()
	s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil || !p.track(s) {
		if s != nil {
			_ = s.Close()
		}
		p.untrack(c)
		return
	}
	go func() {
		_, _ = io.Copy(s, c)
		p.untrack(c, s)
	}()
	_, _ = io.Copy(c, s)
	p.untrack(c, s)
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			_ = c.Close()
			delete(p.conns, c)
		}
	}
}

// poolVia opens a pool on dbURL that connects through the proxy.
func poolVia(t *testing.T, p *proxy, dbURL string) *pgxpool.Pool {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	target := u.Host
	require.Equal(t, p.target, target)
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return tu.NewPool(t, u.String())
}

// hostOf returns the host:port of a database URL.
func hostOf(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	return u.Host
}
