package demo_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/demo"
	"github.com/neo-events/neo-events/internal/webhook"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func signedHeader(t *testing.T, secret, id string, ts int64, body []byte) http.Header {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	require.NoError(t, err)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", webhook.Sign(key, id, ts, body))
	return h
}

func TestReceiverVerify(t *testing.T) {
	t.Parallel()
	recv, err := demo.NewReceiver(testSecret)
	require.NoError(t, err)
	body := []byte(`{"id":"msg_1"}`)
	now := time.Now().Unix()
	good := signedHeader(t, testSecret, "msg_1", now, body)
	with := func(k, v string) http.Header {
		h := good.Clone()
		h.Set(k, v)
		return h
	}
	cases := []struct {
		name string
		h    http.Header
		body []byte
		ok   bool
	}{
		{"valid", good, body, true},
		{"one of several signatures", with("webhook-signature", "v1,AAAA "+good.Get("webhook-signature")), body, true},
		{"tampered body", good, []byte(`{"id":"msg_2"}`), false},
		{"other id", with("webhook-id", "msg_2"), body, false},
		{"wrong secret", signedHeader(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("other key")), "msg_1", now, body), body, false},
		{"old timestamp", signedHeader(t, testSecret, "msg_1", now-3600, body), body, false},
		{"future timestamp", signedHeader(t, testSecret, "msg_1", now+3600, body), body, false},
		{"timestamp not a number", with("webhook-timestamp", "soon"), body, false},
		{"no signature", with("webhook-signature", ""), body, false},
		{"unknown version", with("webhook-signature", "v2,"+good.Get("webhook-signature")[3:]), body, false},
		{"signature not base64", with("webhook-signature", "v1,!!!"), body, false},
	}
	for _, c := range cases {
		err := recv.Verify(c.h, c.body)
		if c.ok {
			require.NoError(t, err, c.name)
		} else {
			require.ErrorIs(t, err, demo.ErrBadSignature, c.name)
		}
	}
}

func TestNewReceiverRefusesBadSecrets(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "secret", "whsec_", "whsec_not*base64"} {
		_, err := demo.NewReceiver(s)
		require.Error(t, err, "%q", s)
	}
}

// TestReceiverAcceptsTheWorkersWebhooks runs the built-in webhook handler
// against the receiver: what the worker signs, the receiver accepts, and a
// worker with the wrong secret is counted invalid.
func TestReceiverAcceptsTheWorkersWebhooks(t *testing.T) {
	t.Parallel()
	recv, err := demo.NewReceiver(testSecret)
	require.NoError(t, err)
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	h := webhook.New(webhook.Options{})

	deliver := func(secret string) error {
		cfg, _ := json.Marshal(map[string]any{"url": srv.URL + demo.WebhookPath, "secret": secret})
		req := request(t, 1)
		req.Action = handler.Action{Name: demo.ActionWebhook, HandlerName: "webhook", Config: cfg, Timeout: 5 * time.Second}
		return handler.Call(context.Background(), h, req)
	}
	require.NoError(t, deliver(testSecret))
	require.NoError(t, deliver(testSecret))
	require.Error(t, deliver("whsec_"+base64.StdEncoding.EncodeToString([]byte("wrong"))))

	st := recv.Stats()
	require.Equal(t, int64(2), st.Valid)
	require.Equal(t, int64(1), st.Invalid)
	require.Equal(t, int64(3), st.Total())
	require.Equal(t, 2, st.Distinct)
	require.Contains(t, st.LastError, "no v1 signature matches")
}

func TestReceiverRefusesGet(t *testing.T) {
	t.Parallel()
	recv, err := demo.NewReceiver(testSecret)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	recv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, demo.WebhookPath, nil))
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Equal(t, int64(1), recv.Stats().Invalid)
}
