package webhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config defaults and limits.
const (
	// DefaultTimeout bounds one POST when the config has no timeout_ms.
	DefaultTimeout = 10 * time.Second
	// MaxTimeout is the largest timeout_ms accepted; the action's own
	// timeout still applies on top.
	MaxTimeout = 5 * time.Minute
	// SecretPrefix starts a Standard Webhooks secret: whsec_<base64>.
	SecretPrefix = "whsec_"
)

// ErrInvalidConfig is wrapped by every error about an action's webhook
// config. Such errors are Permanent: no retry fixes a config.
var ErrInvalidConfig = errors.New("invalid webhook config")

func badConfig(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// rawConfig is the action's `config` as written by the platform or the
// worker's `handlers` config.
type rawConfig struct {
	URL       string          `json:"url"`
	Secret    string          `json:"secret"`
	SecretEnv string          `json:"secret_env"`
	TimeoutMS json.RawMessage `json:"timeout_ms"`
	Headers   json.RawMessage `json:"headers"`
}

// config is a checked rawConfig.
type config struct {
	url     *url.URL
	key     []byte // HMAC key; nil means unsigned
	timeout time.Duration
	headers http.Header
}

// reserved headers are ours to set (or Go's to compute); a config that sets
// them is refused rather than silently overridden.
var reserved = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Host": true,
	"Transfer-Encoding": true, "Connection": true,
}

// parseConfig checks the action config. Unknown keys are refused: a typo
// such as "secretEnv" would otherwise send unsigned webhooks silently.
func parseConfig(raw json.RawMessage, getenv func(string) string) (*config, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, badConfig(`config must be a JSON object with at least "url"`)
	}
	var rc rawConfig
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rc); err != nil {
		return nil, badConfig("%v (known keys: url, secret, secret_env, timeout_ms, headers)", err)
	}
	u, err := parseURL(rc.URL)
	if err != nil {
		return nil, err
	}
	key, err := resolveSecret(rc.Secret, rc.SecretEnv, getenv)
	if err != nil {
		return nil, err
	}
	timeout, err := parseTimeout(rc.TimeoutMS)
	if err != nil {
		return nil, err
	}
	headers, err := parseHeaders(rc.Headers)
	if err != nil {
		return nil, err
	}
	return &config{url: u, key: key, timeout: timeout, headers: headers}, nil
}

func parseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, badConfig("url is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error quotes the URL, which may hold a password.
		return nil, badConfig("url is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, badConfig("url %s: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, badConfig("url %s: no host", u.Redacted())
	}
	return u, nil
}

// resolveSecret returns the HMAC key of a whsec_<base64> secret, given
// inline or through an environment variable; neither means unsigned.
func resolveSecret(secret, env string, getenv func(string) string) ([]byte, error) {
	switch {
	case secret != "" && env != "":
		return nil, badConfig("set secret or secret_env, not both")
	case env != "":
		secret = getenv(env)
		if secret == "" {
			return nil, badConfig("secret_env: environment variable %q is unset or empty", env)
		}
		key, err := decodeSecret(secret)
		if err != nil {
			return nil, badConfig("secret_env %q: %v", env, err)
		}
		return key, nil
	case secret != "":
		key, err := decodeSecret(secret)
		if err != nil {
			return nil, badConfig("secret: %v", err)
		}
		return key, nil
	}
	return nil, nil
}

// decodeSecret never quotes the secret in its errors.
func decodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("must have the Standard Webhooks form %s<base64>", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("the part after " + SecretPrefix + " is not valid base64")
	}
	if len(key) == 0 {
		return nil, errors.New("the key is empty")
	}
	return key, nil
}

func parseTimeout(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return DefaultTimeout, nil
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || ms <= 0 || ms > MaxTimeout.Milliseconds() {
		return 0, badConfig("timeout_ms %.40s: want a whole number of milliseconds in 1..%d", raw, MaxTimeout.Milliseconds())
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func parseHeaders(raw json.RawMessage) (http.Header, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, badConfig("headers must be an object of string values")
	}
	h := make(http.Header, len(m))
	for name, value := range m {
		if err := checkHeader(name, value); err != nil {
			return nil, err
		}
		h.Set(name, value)
	}
	return h, nil
}

func checkHeader(name, value string) error {
	canon := http.CanonicalHeaderKey(name)
	if !validHeaderName(name) {
		return badConfig("headers: %q is not a valid header name", name)
	}
	if reserved[canon] || strings.HasPrefix(strings.ToLower(name), "webhook-") {
		return badConfig("headers: %q is set by the webhook handler and cannot be overridden", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return badConfig("headers: value of %q contains a line break or NUL", name)
	}
	return nil
}

// validHeaderName checks the RFC 9110 token grammar.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}
