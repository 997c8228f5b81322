package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/handlertest"
	"github.com/neo-events/neo-events/internal/webhook"
)

// testSecret is the secret of the Standard Webhooks reference test vector.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var fixedNow = time.Unix(1_700_000_000, 0)

// verify checks a delivery the way a receiver following the Standard
// Webhooks spec does, independently of the package's Sign: strip whsec_,
// base64-decode the key, HMAC-SHA256 "<id>.<timestamp>.<body>", and compare
// in constant time with each space-separated "v1,<base64>" entry.
func verify(secret string, h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return fmt.Errorf("timestamp %q is not unix seconds", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching v1 signature")
}

func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	// From the Standard Webhooks reference libraries' tests.
	const (
		msgID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts    = int64(1614265330)
		want  = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	body := []byte(`{"test": 2432232314}`)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(testSecret, "whsec_"))
	require.NoError(t, err)
	require.Equal(t, want, webhook.Sign(key, msgID, ts, body))

	h := http.Header{}
	h.Set("webhook-id", msgID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+want)
	require.NoError(t, verify(testSecret, h, body), "the test's verifier accepts the spec's vector")
	require.Error(t, verify(testSecret, h, []byte(`{"test": 2432232315}`)), "and refuses a changed body")
}

// recorder is a loopback endpoint that remembers what it received.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
	bodies  [][]byte
	respond func(w http.ResponseWriter, r *http.Request)
	srv     *httptest.Server
}

func newRecorder(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *recorder {
	t.Helper()
	rec := &recorder{respond: respond}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.headers = append(rec.headers, r.Header.Clone())
		rec.bodies = append(rec.bodies, body)
		rec.mu.Unlock()
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if rec.respond != nil {
			rec.respond(w, r)
		}
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) last(t *testing.T) (http.Header, []byte) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.headers, "the endpoint received nothing")
	return r.headers[len(r.headers)-1], r.bodies[len(r.bodies)-1]
}

func newEvent(t testing.TB) *event.Event {
	t.Helper()
	ev, err := event.New("tenant_acme", "users.created", "user", uuid.New(),
		json.RawMessage(`{"email":"a@example.com","plan":"pro"}`))
	require.NoError(t, err)
	ev.CorrelationID = uuid.New()
	ev.Metadata.RequestID = "req-42"
	return ev
}

func cfgJSON(t testing.TB, m map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func run(t *testing.T, h handler.Handler, ev *event.Event, cfg map[string]any, opts ...handlertest.Option) handlertest.Result {
	t.Helper()
	opts = append([]handlertest.Option{handlertest.WithConfig(cfgJSON(t, cfg)), handlertest.WithActionName("notify")}, opts...)
	return handlertest.Run(t, h, ev, opts...)
}

func TestDeliverySigned(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	ev := newEvent(t)
	h := webhook.New(webhook.Options{Now: func() time.Time { return fixedNow }})
	res := run(t, h, ev, map[string]any{
		"url":     rec.srv.URL + "/hooks?x=1",
		"secret":  testSecret,
		"headers": map[string]string{"Authorization": "Bearer t0k", "x-tenant": "acme"},
	})
	require.NoError(t, res.Err)
	require.JSONEq(t, `{"status_code":202,"duration_ms":0}`, string(res.Output))

	hdr, body := rec.last(t)
	require.Equal(t, "application/json", hdr.Get("Content-Type"))
	require.Equal(t, ev.ID.String(), hdr.Get("webhook-id"))
	require.Equal(t, "1700000000", hdr.Get("webhook-timestamp"))
	require.True(t, strings.HasPrefix(hdr.Get("webhook-signature"), "v1,"))
	require.NoError(t, verify(testSecret, hdr, body))
	require.Error(t, verify("whsec_"+base64.StdEncoding.EncodeToString([]byte("other key")), hdr, body))
	require.Equal(t, "Bearer t0k", hdr.Get("Authorization"))
	require.Equal(t, "acme", hdr.Get("X-Tenant"))

	// The body is the event's JSON form: every column name plus schema.
	var got event.Event
	require.NoError(t, json.Unmarshal(body, &got))
	if diff := cmp.Diff(ev, &got); diff != "" {
		t.Fatalf("delivered event (-want +got):\n%s", diff)
	}
	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &keys))
	require.Contains(t, keys, "schema")
	require.Contains(t, keys, "event_data")
	require.JSONEq(t, `"tenant_acme"`, string(keys["schema"]))
}

func TestSameIDOnEveryRetry(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	ev := newEvent(t)
	now := fixedNow
	h := webhook.New(webhook.Options{Now: func() time.Time { return now }})
	cfg := map[string]any{"url": rec.srv.URL, "secret": testSecret}
	for attempt := 1; attempt <= 3; attempt++ {
		now = fixedNow.Add(time.Duration(attempt) * time.Minute)
		res := run(t, h, ev, cfg, handlertest.WithAttempt(attempt, 4))
		require.Error(t, res.Err)
		require.False(t, res.Permanent)
		hdr, body := rec.last(t)
		require.Equal(t, ev.ID.String(), hdr.Get("webhook-id"), "attempt %d", attempt)
		require.Equal(t, strconv.FormatInt(now.Unix(), 10), hdr.Get("webhook-timestamp"))
		require.NoError(t, verify(testSecret, hdr, body), "a fresh signature per attempt")
	}
}

func TestUnsignedWithoutSecret(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, nil)
	res := run(t, webhook.New(webhook.Options{}), newEvent(t), map[string]any{"url": rec.srv.URL})
	require.NoError(t, res.Err)
	hdr, _ := rec.last(t)
	require.Empty(t, hdr.Values("webhook-signature"))
	require.NotEmpty(t, hdr.Get("webhook-id"))
	require.NotEmpty(t, hdr.Get("webhook-timestamp"))
}

func TestSecretEnv(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, nil)
	env := map[string]string{"HOOK_SECRET": testSecret}
	h := webhook.New(webhook.Options{Getenv: func(k string) string { return env[k] }})
	res := run(t, h, newEvent(t), map[string]any{"url": rec.srv.URL, "secret_env": "HOOK_SECRET"})
	require.NoError(t, res.Err)
	hdr, body := rec.last(t)
	require.NoError(t, verify(testSecret, hdr, body))

	res = run(t, h, newEvent(t), map[string]any{"url": rec.srv.URL, "secret_env": "MISSING"})
	require.True(t, res.Permanent)
	require.ErrorIs(t, res.Err, webhook.ErrInvalidConfig)
	require.Contains(t, res.Err.Error(), `"MISSING" is unset or empty`)
}

func TestStatusClasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		ok        bool
		permanent bool
	}{
		{200, true, false}, {201, true, false}, {204, true, false},
		{301, false, true}, {302, false, true}, {307, false, true}, {308, false, true},
		{400, false, true}, {401, false, true}, {403, false, true}, {404, false, true},
		{410, false, true}, {413, false, true}, {422, false, true},
		{408, false, false}, {429, false, false},
		{500, false, false}, {502, false, false}, {503, false, false}, {504, false, false},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.code >= 300 && tc.code < 400 {
					w.Header().Set("Location", "https://elsewhere.example/hook")
				}
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, `{"error":"details here"}`)
			})
			res := run(t, webhook.New(webhook.Options{}), newEvent(t), map[string]any{"url": rec.srv.URL})
			require.Equal(t, 1, len(rec.headers), "a redirect is never followed")
			if tc.ok {
				require.NoError(t, res.Err)
				require.JSONEq(t, fmt.Sprintf(`{"status_code":%d}`, tc.code), onlyStatus(t, res.Output))
				return
			}
			require.Error(t, res.Err)
			require.Equal(t, tc.permanent, res.Permanent)
			var se *webhook.StatusError
			require.ErrorAs(t, res.Err, &se)
			require.Equal(t, tc.code, se.StatusCode)
			require.Contains(t, res.Err.Error(), fmt.Sprintf("HTTP %d", tc.code))
			require.Contains(t, res.Err.Error(), `{"error":"details here"}`)
			if tc.code >= 300 && tc.code < 400 {
				require.Contains(t, res.Err.Error(), "redirect to https://elsewhere.example/hook not followed")
			}
			require.Zero(t, res.RetryAfter)
		})
	}
}

func onlyStatus(t *testing.T, out json.RawMessage) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m))
	require.Contains(t, m, "duration_ms")
	return fmt.Sprintf(`{"status_code":%v}`, m["status_code"])
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		code   int
		header string
		want   time.Duration
		has    bool
	}{
		{"seconds on 503", 503, "120", 2 * time.Minute, true},
		{"seconds on 429", 429, " 7 ", 7 * time.Second, true},
		{"zero", 429, "0", 0, true},
		{"http date", 503, fixedNow.Add(90 * time.Second).UTC().Format(http.TimeFormat), 90 * time.Second, true},
		{"http date in the past", 503, fixedNow.Add(-time.Hour).UTC().Format(http.TimeFormat), 0, true},
		{"huge", 503, "99999999999999999999", 0, false},
		{"absurd but parsable", 503, "9999999999", 24 * time.Hour, true},
		{"garbage", 503, "soon", 0, false},
		{"negative", 503, "-5", 0, false},
		{"absent", 500, "", 0, false},
		{"ignored on permanent 400", 400, "60", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(tc.code)
			})
			h := webhook.New(webhook.Options{Now: func() time.Time { return fixedNow }})
			res := run(t, h, newEvent(t), map[string]any{"url": rec.srv.URL})
			require.Error(t, res.Err)
			d, ok := handler.RetryDelay(res.Err)
			require.Equal(t, tc.has, ok)
			require.Equal(t, tc.want, d)
			require.Equal(t, tc.want, res.RetryAfter)
			var se *webhook.StatusError
			require.ErrorAs(t, res.Err, &se, "RetryAfter keeps the status error reachable")
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	start := time.Now()
	res := run(t, webhook.New(webhook.Options{}), newEvent(t), map[string]any{"url": rec.srv.URL, "timeout_ms": 50})
	require.Error(t, res.Err)
	require.False(t, res.Permanent)
	require.ErrorIs(t, res.Err, context.DeadlineExceeded)
	require.Contains(t, res.Err.Error(), "no response before the deadline (timeout_ms 50")
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	res := run(t, webhook.New(webhook.Options{}), newEvent(t), map[string]any{"url": "http://" + addr + "/hook"})
	require.Error(t, res.Err)
	require.False(t, res.Permanent, "the receiver may come back")
	require.Zero(t, res.RetryAfter)
	require.Contains(t, res.Err.Error(), "connection refused")
}

func TestPasswordNeverInErrors(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	u := strings.Replace(rec.srv.URL, "http://", "http://user:hunter2@", 1)
	res := run(t, webhook.New(webhook.Options{}), newEvent(t), map[string]any{"url": u})
	require.Error(t, res.Err)
	require.NotContains(t, res.Err.Error(), "hunter2")
	hdr, _ := rec.last(t)
	require.NotEmpty(t, hdr.Get("Authorization"), "userinfo still becomes basic auth")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	res = run(t, webhook.New(webhook.Options{}), newEvent(t), map[string]any{"url": "http://user:hunter2@" + addr})
	require.Error(t, res.Err)
	require.NotContains(t, res.Err.Error(), "hunter2")
}

func TestErrorBodyIsCappedAndSanitized(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(500)
		_, _ = io.WriteString(w, "bad\x00thing\r\n"+strings.Repeat("é", 200_000))
	})
	res := run(t, webhook.New(webhook.Options{}), newEvent(t), map[string]any{"url": rec.srv.URL})
	var se *webhook.StatusError
	require.ErrorAs(t, res.Err, &se)
	require.Len(t, se.Body, webhook.MaxResponseBytes, "read is capped")
	msg := res.Err.Error()
	require.Less(t, len(msg), webhook.MaxErrorBodyBytes+300, "message is capped")
	require.NotContains(t, msg, "\x00")
	require.NotContains(t, msg, "\n")
	require.Contains(t, msg, "bad thing")
	require.True(t, strings.HasSuffix(msg, "…(truncated)"), msg[len(msg)-40:])
	require.True(t, json.Valid([]byte(strconv.Quote(msg))))
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	const url = "http://127.0.0.1:1/hook" // never dialled: config errors come first
	tests := []struct {
		name string
		cfg  string
		want string
	}{
		{"no config", ``, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"array", `[]`, "must be a JSON object"},
		{"empty", `{}`, "url is required"},
		{"url not string", `{"url": 5}`, "cannot unmarshal"},
		{"unknown key", `{"url": "` + url + `", "secretEnv": "X"}`, `unknown field "secretEnv"`},
		{"ftp", `{"url": "ftp://127.0.0.1/x"}`, "scheme must be http or https"},
		{"relative", `{"url": "/hook"}`, "scheme must be http or https"},
		{"no host", `{"url": "http:///hook"}`, "no host"},
		{"unparsable", `{"url": "http://[::1"}`, "not a valid URL"},
		{"both secrets", `{"url": "` + url + `", "secret": "` + testSecret + `", "secret_env": "X"}`, "not both"},
		{"secret without prefix", `{"url": "` + url + `", "secret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, "whsec_<base64>"},
		{"secret not base64", `{"url": "` + url + `", "secret": "whsec_!!!not-base64"}`, "not valid base64"},
		{"empty key", `{"url": "` + url + `", "secret": "whsec_"}`, "key is empty"},
		{"timeout zero", `{"url": "` + url + `", "timeout_ms": 0}`, "timeout_ms 0"},
		{"timeout negative", `{"url": "` + url + `", "timeout_ms": -1}`, "timeout_ms -1"},
		{"timeout fraction", `{"url": "` + url + `", "timeout_ms": 1.5}`, "timeout_ms 1.5"},
		{"timeout too long", `{"url": "` + url + `", "timeout_ms": 300001}`, "timeout_ms 300001"},
		{"timeout string", `{"url": "` + url + `", "timeout_ms": "soon"}`, `timeout_ms "soon"`},
		{"headers array", `{"url": "` + url + `", "headers": ["a"]}`, "headers must be an object"},
		{"header number", `{"url": "` + url + `", "headers": {"X-N": 5}}`, "headers must be an object"},
		{"override webhook-id", `{"url": "` + url + `", "headers": {"Webhook-Id": "x"}}`, "cannot be overridden"},
		{"override signature", `{"url": "` + url + `", "headers": {"webhook-signature": "v1,x"}}`, "cannot be overridden"},
		{"other webhook header", `{"url": "` + url + `", "headers": {"webhook-version": "2"}}`, "cannot be overridden"},
		{"override content type", `{"url": "` + url + `", "headers": {"content-type": "text/plain"}}`, "cannot be overridden"},
		{"override host", `{"url": "` + url + `", "headers": {"Host": "evil"}}`, "cannot be overridden"},
		{"bad header name", `{"url": "` + url + `", "headers": {"X Bad": "v"}}`, "not a valid header name"},
		{"header injection", `{"url": "` + url + `", "headers": {"X-A": "v\r\nX-B: w"}}`, "line break"},
	}
	h := webhook.New(webhook.Options{Getenv: func(string) string { return "" }})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := []handlertest.Option{handlertest.WithActionName("notify")}
			if tc.cfg != "" {
				opts = append(opts, handlertest.WithConfig(tc.cfg))
			}
			res := handlertest.Run(t, h, newEvent(t), opts...)
			require.Error(t, res.Err)
			require.True(t, res.Permanent, "a bad config is never retried: %v", res.Err)
			require.ErrorIs(t, res.Err, webhook.ErrInvalidConfig)
			require.Contains(t, res.Err.Error(), tc.want)
			require.Contains(t, res.Err.Error(), `webhook action "notify"`)
			require.NotContains(t, res.Err.Error(), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secrets stay out of errors")
		})
	}
}

func TestNoEvent(t *testing.T) {
	t.Parallel()
	err := handler.Call(context.Background(), webhook.New(webhook.Options{}), &handler.Request{})
	require.True(t, handler.IsPermanent(err))
}

func TestName(t *testing.T) {
	t.Parallel()
	require.NoError(t, handler.ValidateName(webhook.Name))
	reg := handler.NewRegistry()
	require.NoError(t, reg.Register(webhook.Name, webhook.New(webhook.Options{})))
	_, ok := reg.Lookup("webhook")
	require.True(t, ok)
}
