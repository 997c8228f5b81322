// Package webhook is the built-in `webhook` handler (DESIGN §3): it POSTs
// the event as JSON to the URL in the action's config, signed the Standard
// Webhooks way (https://www.standardwebhooks.com), and maps the response to
// the handler package's outcomes: 2xx completes; 4xx other than 408 and 429
// is permanent; 5xx, 408, 429, timeouts and connection errors are retried,
// after the server's Retry-After when it sends one.
//
// Config keys: url (required, http or https), secret (whsec_<base64>) or
// secret_env (the name of an environment variable holding one), timeout_ms
// (default 10000), headers (extra headers; webhook-*, Content-Type and the
// framing headers are ours). A bad config is a permanent failure.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/neo-events/neo-events/handler"
)

// Name is the handler name the worker registers this handler under.
const Name = "webhook"

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Response handling limits.
const (
	// MaxResponseBytes is how much of a response body is read.
	MaxResponseBytes = 64 << 10
	// MaxErrorBodyBytes is how much of it goes into an error message (and
	// so into action_executions.error_message).
	MaxErrorBodyBytes = 1 << 10
	// maxRetryAfter bounds a parsed Retry-After before the retry policy
	// applies its own cap, so absurd values cannot overflow a Duration.
	maxRetryAfter = 24 * time.Hour
	// maxIdlePerHost is how many idle keep-alive connections to one
	// receiver the handler keeps for the next deliveries.
	maxIdlePerHost = 64
)

// Options configures the handler. Every field has a default.
type Options struct {
	// Client sends the requests. Defaults to a client that does not follow
	// redirects (a redirected POST silently becomes a GET); with it a 3xx
	// is a permanent failure naming the new location.
	Client *http.Client
	// Getenv resolves secret_env. Defaults to os.Getenv.
	Getenv func(string) string
	// Now stamps webhook-timestamp and resolves Retry-After dates.
	// Defaults to time.Now.
	Now func() time.Time
}

// New returns the webhook handler.
func New(opts Options) handler.Handler {
	if opts.Client == nil {
		// A transport of its own: keep-alive connections to a receiver are
		// reused by many concurrent deliveries (net/http's default keeps 2
		// idle per host), and nothing else in the process that closes the
		// default transport's idle connections breaks a delivery in flight.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = maxIdlePerHost
		opts.Client = &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &webhook{opts: opts}
}

type webhook struct{ opts Options }

// Handle delivers one event. The webhook-id is the event id, so every
// attempt of one event carries the same id and receivers can deduplicate.
func (w *webhook) Handle(ctx context.Context, req *handler.Request) error {
	if req.Event == nil {
		return handler.Permanent(errors.New("webhook: request has no event"))
	}
	cfg, err := parseConfig(req.Action.Config, w.opts.Getenv)
	if err != nil {
		return handler.Permanent(fmt.Errorf("webhook action %q: %w", req.Action.Name, err))
	}
	body, err := req.Event.MarshalJSON()
	if err != nil {
		return handler.Permanent(fmt.Errorf("webhook: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	httpReq, err := w.newRequest(ctx, cfg, req.Event.ID.String(), body)
	if err != nil {
		return handler.Permanent(err)
	}
	start := w.opts.Now()
	resp, err := w.opts.Client.Do(httpReq)
	if err != nil {
		return w.transportError(ctx, cfg, err)
	}
	defer resp.Body.Close()
	return w.result(req, cfg, resp, w.opts.Now().Sub(start))
}

func (w *webhook) newRequest(ctx context.Context, cfg *config, id string, body []byte) (*http.Request, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.url.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("webhook POST %s: %w", cfg.url.Redacted(), err)
	}
	for name, values := range cfg.headers {
		r.Header[name] = values
	}
	ts := w.opts.Now().Unix()
	r.Header.Set("Content-Type", "application/json")
	if r.Header.Get("User-Agent") == "" {
		r.Header.Set("User-Agent", "neo-events-webhook/1")
	}
	r.Header.Set(HeaderID, id)
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	if cfg.key != nil {
		r.Header.Set(HeaderSignature, Sign(cfg.key, id, ts, body))
	}
	return r, nil
}

// Sign returns the Standard Webhooks signature header value
// `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, where key is
// the base64-decoded part of a whsec_ secret.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// transportError classifies a failure to get a response: all are retried,
// since the receiver may come back. The message says which it was.
func (w *webhook) transportError(ctx context.Context, cfg *config, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("webhook POST %s: no response before the deadline (timeout_ms %d or the action's timeout): %w",
			cfg.url.Redacted(), cfg.timeout.Milliseconds(), err)
	}
	// The client's error already names the URL, with any password removed.
	return fmt.Errorf("webhook: %w", err)
}

// result maps the response to the handler's outcome.
func (w *webhook) result(req *handler.Request, cfg *config, resp *http.Response, took time.Duration) error {
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	// Drain a little more so the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, MaxResponseBytes)
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return req.SetOutput(output{StatusCode: code, DurationMS: took.Milliseconds()})
	}
	serr := &StatusError{URL: cfg.url.Redacted(), StatusCode: code, Body: string(body)}
	if readErr != nil && len(body) == 0 {
		serr.Body = "(body unreadable: " + readErr.Error() + ")"
	}
	switch {
	case code >= 300 && code < 400:
		serr.Location = resp.Header.Get("Location")
		return handler.Permanent(serr)
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return handler.Permanent(serr)
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), w.opts.Now()); ok {
		return handler.RetryAfter(d, serr)
	}
	return serr
}

// output is what a delivered webhook stores in action_executions.output_data.
type output struct {
	StatusCode int   `json:"status_code"`
	DurationMS int64 `json:"duration_ms"`
}

// StatusError is a response outside 2xx. Callers reach it with errors.As.
type StatusError struct {
	// URL is the target with any password redacted.
	URL string
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is the start of the response body (at most MaxResponseBytes).
	Body string
	// Location is the redirect target of a 3xx.
	Location string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webhook POST %s: HTTP %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Location != "" {
		fmt.Fprintf(&b, ", redirect to %s not followed (point the action at the new URL)", sanitize(e.Location, 256))
	}
	if body := sanitize(e.Body, MaxErrorBodyBytes); body != "" {
		b.WriteString(": ")
		b.WriteString(body)
	}
	return b.String()
}

// sanitize makes response text safe for logs and a Postgres text column:
// valid UTF-8, no NUL or other control characters, at most limit bytes.
func sanitize(s string, limit int) string {
	truncated := len(s) > limit
	if truncated {
		s = s[:limit]
	}
	// A cut inside a rune leaves a fragment that this also replaces.
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if truncated {
		s += "…(truncated)"
	}
	return s
}

// parseRetryAfter reads delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
// A date in the past means now; anything unparsable is ignored.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}
