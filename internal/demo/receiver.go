package demo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Receiver limits.
const (
	// Tolerance is how far webhook-timestamp may be from the receiver's
	// clock, as Standard Webhooks recommends, so a captured request cannot
	// be replayed later.
	Tolerance = 5 * time.Minute
	// maxBody bounds a request body the receiver reads.
	maxBody = 1 << 20
)

// ErrBadSignature is what Verify returns for a request that is not signed
// with the receiver's secret.
var ErrBadSignature = errors.New("webhook signature invalid")

// Receiver is the demo's webhook endpoint. It verifies the Standard
// Webhooks signature of every request independently of the worker's signing
// code and counts what it saw. It answers 204 to a valid request and 401 to
// any other.
type Receiver struct {
	key []byte
	now func() time.Time

	valid, invalid atomic.Int64
	mu             sync.Mutex
	ids            map[string]bool
	lastErr        string
}

// NewReceiver returns a receiver checking signatures against secret
// (whsec_<base64>).
func NewReceiver(secret string) (*Receiver, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New("demo receiver: secret must be whsec_<base64>")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New("demo receiver: the part after whsec_ is not base64")
	}
	return &Receiver{key: key, now: time.Now, ids: map[string]bool{}}, nil
}

// ReceiverStats is what a receiver counted.
type ReceiverStats struct {
	// Valid and Invalid count requests by signature check.
	Valid, Invalid int64
	// Distinct counts distinct webhook-ids among valid requests: the events
	// delivered, whatever the redeliveries.
	Distinct int
	// LastError describes the last invalid request.
	LastError string
}

// Total is every request received.
func (s ReceiverStats) Total() int64 { return s.Valid + s.Invalid }

// Stats returns the counts so far.
func (r *Receiver) Stats() ReceiverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ReceiverStats{Valid: r.valid.Load(), Invalid: r.invalid.Load(), Distinct: len(r.ids), LastError: r.lastErr}
}

// ServeHTTP checks one delivery.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = errors.New("body too large")
	}
	if err == nil && req.Method != http.MethodPost {
		err = fmt.Errorf("method %s, want POST", req.Method)
	}
	if err == nil {
		err = r.Verify(req.Header, body)
	}
	if err != nil {
		r.invalid.Add(1)
		r.mu.Lock()
		r.lastErr = err.Error()
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	r.valid.Add(1)
	r.mu.Lock()
	r.ids[req.Header.Get("webhook-id")] = true
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Verify checks the webhook-id, webhook-timestamp and webhook-signature
// headers against body. The signature header may list several
// space-separated `v1,<base64>` values (a sender rotating secrets); one
// match is enough.
func (r *Receiver) Verify(h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("%w: missing webhook-id, webhook-timestamp or webhook-signature", ErrBadSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp %q is not unix seconds", ErrBadSignature, ts)
	}
	if d := r.now().Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("%w: webhook-timestamp is %s away from now", ErrBadSignature, d.Round(time.Second))
	}
	mac := hmac.New(sha256.New, r.key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches (id %s)", ErrBadSignature, id)
}

// Serve listens on addr and serves the receiver at WebhookPath until the
// returned stop is called.
func (r *Receiver) Serve(addr string) (stop func(context.Context) error, err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo receiver: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(WebhookPath, r)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return srv.Shutdown, nil
}
