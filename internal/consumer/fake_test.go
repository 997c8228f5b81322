package consumer

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeConn is a Redis connection in memory: XREADGROUP gets a canned
// reply, HELLO is refused (go-redis stays on RESP2 framing, and its typed
// parsers read either protocol's types), anything else gets +OK. It lets
// go-redis's own parser read exactly the bytes ours reads, with no network.
type fakeConn struct {
	mu    sync.Mutex
	reply []byte
	in    []byte
	out   bytes.Buffer
}

func (c *fakeConn) setReply(b []byte) {
	c.mu.Lock()
	c.reply = b
	c.mu.Unlock()
}

func (c *fakeConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.in = append(c.in, b...)
	for {
		name, n := firstArg(c.in)
		if n == 0 {
			break
		}
		c.in = c.in[n:]
		switch strings.ToLower(name) {
		case "hello":
			c.out.WriteString("-ERR unknown command 'HELLO'\r\n")
		case "xreadgroup":
			c.out.Write(c.reply)
		default:
			c.out.WriteString("+OK\r\n")
		}
	}
	if len(c.in) == 0 {
		c.in = c.in[:0]
	}
	return len(b), nil
}

func (c *fakeConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out.Len() == 0 {
		return 0, timeoutError{}
	}
	return c.out.Read(b)
}

// firstArg returns the name of the first complete command in b and its
// length in bytes (0 if none is complete yet).
func firstArg(b []byte) (string, int) {
	pos := 0
	line := func() (string, bool) {
		i := bytes.Index(b[pos:], []byte("\r\n"))
		if i < 0 {
			return "", false
		}
		l := string(b[pos : pos+i])
		pos += i + 2
		return l, true
	}
	h, ok := line()
	if !ok || !strings.HasPrefix(h, "*") {
		return "", 0
	}
	n, _ := strconv.Atoi(h[1:])
	name := ""
	for i := 0; i < n; i++ {
		l, ok := line()
		if !ok {
			return "", 0
		}
		size, _ := strconv.Atoi(l[1:])
		if pos+size+2 > len(b) {
			return "", 0
		}
		if i == 0 {
			name = string(b[pos : pos+size])
		}
		pos += size + 2
	}
	return name, pos
}

func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return fakeAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return fakeAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

type fakeAddr struct{}

func (fakeAddr) Network() string { return "fake" }
func (fakeAddr) String() string  { return "fake:6379" }

type timeoutError struct{}

func (timeoutError) Error() string   { return "fake read: nothing to read" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// newFakeClient returns a client whose one connection is fc.
func newFakeClient(tb testing.TB, fc *fakeConn) *redis.Client {
	tb.Helper()
	cl := redis.NewClient(&redis.Options{
		Addr: "fake:6379", Protocol: 2, DisableIdentity: true, PoolSize: 1, MaxRetries: -1,
		Dialer: func(context.Context, string, string) (net.Conn, error) { return fc, nil },
	})
	tb.Cleanup(func() { _ = cl.Close() })
	return cl
}

// typedRead is what go-redis's typed XREADGROUP makes of reply.
func typedRead(ctx context.Context, cl *redis.Client, fc *fakeConn, reply []byte) ([]redis.XStream, error) {
	fc.setReply(reply)
	return cl.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", ">"}}).Result()
}
