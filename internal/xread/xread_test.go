package xread

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/internal/testutil"
)

// dial opens a read connection with rdb's options.
func dial(t *testing.T, ctx context.Context, opt *redis.Options) *Conn {
	t.Helper()
	c, err := Dial(ctx, opt)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func pairsMap(kv []string) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestReadGroupMatchesGoRedis reads the same entries through a read
// connection and through go-redis (each in its own group) and compares them.
func TestReadGroupMatchesGoRedis(t *testing.T) {
	testutil.SkipIfShort(t)
	ctx := testutil.Context(t)
	rdb, prefix := testutil.NewRedis(t)
	keys := []string{prefix + ":s:0", prefix + ":s:1"}
	big := strings.Repeat("x", 200<<10) // larger than the reader's buffer
	entries := [][]any{
		{"id", "1", "event_type", "users.created", "event_data", `{"a":1}`},
		{"empty", "", "crlf", "a\r\nb\r\n", "utf8", "é€😀", "nul", "a\x00b"},
		{"big", big, "after", "big"},
		{"dup", "first", "dup", "second"}, // XADD keeps both; go-redis keeps the last
		{"k", "v"},
	}
	for i, e := range entries {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys[i%2], Values: e}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		for _, g := range []string{"raw", "lib"} {
			if err := rdb.XGroupCreate(ctx, k, g, "0").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := dial(t, ctx, rdb.Options())
	got, err := c.ReadGroup(ctx, nil, Args{Group: "raw", Consumer: "c", Streams: keys, Count: 100, Block: -1})
	if err != nil {
		t.Fatalf("ReadGroup: %v", err)
	}
	want, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "lib", Consumer: "c",
		Streams: append(append([]string{}, keys...), ">", ">"), Count: 100, Block: -1}).Result()
	if err != nil {
		t.Fatal(err)
	}
	var flat []redis.XMessage
	var streamsOf []string
	for _, s := range want {
		for _, m := range s.Messages {
			flat = append(flat, m)
			streamsOf = append(streamsOf, s.Stream)
		}
	}
	if len(got) != len(flat) || len(got) != len(entries) {
		t.Fatalf("read %d entries, go-redis %d, added %d", len(got), len(flat), len(entries))
	}
	for i, e := range got {
		if e.Stream != streamsOf[i] || e.ID != flat[i].ID {
			t.Errorf("entry %d: %s %s, go-redis %s %s", i, e.Stream, e.ID, streamsOf[i], flat[i].ID)
		}
		if m := pairsMap(e.Fields); !maps.Equal(m, flat[i].Values) {
			t.Errorf("entry %d fields differ from go-redis's", i)
		}
	}
	// The raw pairs keep both duplicates, in order.
	var dup []string
	for _, e := range got {
		if len(e.Fields) > 0 && e.Fields[0] == "dup" {
			dup = e.Fields
		}
	}
	if strings.Join(dup, ",") != "dup,first,dup,second" {
		t.Errorf("duplicate fields: %q", dup)
	}
	// The stream name is the caller's key, not a copy.
	if got[0].Stream != keys[0] || !sameString(got[0].Stream, keys[0]) {
		t.Error("stream name not interned")
	}
	// Everything read is pending for the consumer: XREADGROUP really ran.
	p, err := rdb.XPending(ctx, keys[0], "raw").Result()
	if err != nil || p.Count != 3 {
		t.Fatalf("pending on %s: %+v %v, want 3", keys[0], p, err)
	}
}

// sameString reports whether a and b share their bytes.
func sameString(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// emptyGroup makes an empty stream with group "g" and a read connection.
func emptyGroup(t *testing.T) (context.Context, *redis.Client, string, *Conn) {
	t.Helper()
	testutil.SkipIfShort(t)
	ctx := testutil.Context(t)
	rdb, prefix := testutil.NewRedis(t)
	key := prefix + ":s"
	if err := rdb.XGroupCreateMkStream(ctx, key, "g", "$").Err(); err != nil {
		t.Fatal(err)
	}
	return ctx, rdb, key, dial(t, ctx, rdb.Options())
}

// TestReadGroupTimeoutErrorAndReuse: a block that passes is redis.Nil, an
// error reply is an Error, and the connection reads on after both.
func TestReadGroupTimeoutErrorAndReuse(t *testing.T) {
	ctx, rdb, key, c := emptyGroup(t)
	args := Args{Group: "g", Consumer: "c", Streams: []string{key}, Count: 10, Block: 20 * time.Millisecond}
	if _, err := c.ReadGroup(ctx, nil, args); !errors.Is(err, redis.Nil) {
		t.Fatalf("empty stream: %v, want redis.Nil", err)
	}
	bad := args
	bad.Group = "nosuchgroup"
	_, err := c.ReadGroup(ctx, nil, bad)
	var rerr Error
	if !errors.As(err, &rerr) || !strings.HasPrefix(err.Error(), "NOGROUP") {
		t.Fatalf("missing group: %v, want a NOGROUP Error", err)
	}
	if c.Broken() {
		t.Fatal("an error reply broke the connection")
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"k", "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := c.ReadGroup(ctx, nil, args)
	if err != nil || len(got) != 1 || strings.Join(got[0].Fields, "=") != "k=v" {
		t.Fatalf("after timeout and error: %+v %v", got, err)
	}
}

// TestReadGroupInterrupted: CLIENT UNBLOCK ends a blocked read early, and
// a cancelled context ends one that would block forever.
func TestReadGroupInterrupted(t *testing.T) {
	ctx, rdb, key, c := emptyGroup(t)
	if c.ID() <= 0 {
		t.Fatalf("client id %d", c.ID())
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		rdb.ClientUnblock(ctx, c.ID())
	}()
	start := time.Now()
	_, err := c.ReadGroup(ctx, nil, Args{Group: "g", Consumer: "c", Streams: []string{key}, Block: 30 * time.Second})
	if !errors.Is(err, redis.Nil) || time.Since(start) > 10*time.Second {
		t.Fatalf("unblocked read: %v after %v, want redis.Nil at once", err, time.Since(start))
	}

	rctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, err = c.ReadGroup(rctx, nil, Args{Group: "g", Consumer: "c", Streams: []string{key}, Block: 0})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Fatalf("cancelled read: %v after %v, want context.Canceled at once", err, time.Since(start))
	}
	if !c.Broken() {
		t.Fatal("an interrupted read left the connection usable")
	}
}

// TestDialCredentialsAndDatabase: the handshake authenticates as the
// options say, selects their database, and reports a refused AUTH.
func TestDialCredentialsAndDatabase(t *testing.T) {
	testutil.SkipIfShort(t)
	ctx := testutil.Context(t)
	rdb, prefix := testutil.NewRedis(t)
	user := strings.ReplaceAll(prefix, ":", "_") + "_reader"
	if err := rdb.Do(ctx, "ACL", "SETUSER", user, "on", ">s3cret", "~*", "+@all").Err(); err != nil {
		t.Skipf("ACL SETUSER not allowed here: %v", err)
	}
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })

	const db = 5
	other := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, DB: db})
	t.Cleanup(func() { _ = other.Close() })
	key := prefix + ":db5"
	t.Cleanup(func() { other.Del(context.Background(), key) })
	if err := other.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"in", "db5"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := other.XGroupCreate(ctx, key, "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	opt := *rdb.Options()
	opt.Username, opt.Password, opt.DB, opt.ClientName = user, "s3cret", db, "xread-test"
	c := dial(t, ctx, &opt)
	got, err := c.ReadGroup(ctx, nil, Args{Group: "g", Consumer: "c", Streams: []string{key}, Block: -1})
	if err != nil || len(got) != 1 || got[0].Fields[1] != "db5" {
		t.Fatalf("read from db %d as %s: %+v %v", db, user, got, err)
	}
	name, err := other.Do(ctx, "CLIENT", "LIST", "ID", itoa(c.ID())).Text()
	if err != nil || !strings.Contains(name, "name=xread-test") || !strings.Contains(name, "user="+user) {
		t.Errorf("CLIENT LIST of the reader: %q %v", name, err)
	}

	opt.Password = "wrong"
	if _, err := Dial(ctx, &opt); err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("wrong password: %v, want an AUTH error", err)
	}
	opt.StreamingCredentialsProvider = nil
	opt.CredentialsProvider = func() (string, string) { return user, "s3cret" }
	opt.Password = "ignored"
	if c, err := Dial(ctx, &opt); err != nil {
		t.Fatalf("credentials provider: %v", err)
	} else {
		_ = c.Close()
	}
}

// encode writes entries as Redis would answer XREADGROUP (streams in order
// of first appearance).
func encode(entries []Entry) []byte {
	var order []string
	by := map[string][]Entry{}
	for _, e := range entries {
		if _, ok := by[e.Stream]; !ok {
			order = append(order, e.Stream)
		}
		by[e.Stream] = append(by[e.Stream], e)
	}
	b := appendHeader(nil, '*', len(order))
	for _, s := range order {
		b = appendHeader(b, '*', 2)
		b = appendBulk(b, s)
		b = appendHeader(b, '*', len(by[s]))
		for _, e := range by[s] {
			b = appendHeader(b, '*', 2)
			b = appendBulk(b, e.ID)
			b = appendCommand(b, e.Fields...)
		}
	}
	return b
}

func parse(data []byte, keys []string) ([]Entry, error) {
	c := &Conn{br: bufio.NewReaderSize(bytes.NewReader(data), 64)}
	return c.readReply(nil, keys)
}

func TestReadReply(t *testing.T) {
	long := strings.Repeat("v", 1000) // longer than the test reader's 64-byte buffer
	entries := []Entry{
		{Stream: "a", ID: "1-0", Fields: []string{"k", "v", "e", ""}},
		{Stream: "a", ID: "1-1", Fields: []string{"long", long}},
		{Stream: "b", ID: "2-0", Fields: []string{}},
	}
	tests := []struct {
		name    string
		data    string
		want    []Entry
		wantErr string // "" for none; "nil" for redis.Nil
	}{
		{"entries", string(encode(entries)), entries, ""},
		{"null array on timeout", "*-1\r\n", nil, "nil"},
		{"resp3 null", "_\r\n", nil, "nil"},
		{"no streams", "*0\r\n", nil, ""},
		{"error reply", "-NOGROUP No such key\r\n", nil, "NOGROUP No such key"},
		{"nested error", "*1\r\n-ERR x\r\n", nil, "error reply inside a reply"},
		{"odd fields", "*1\r\n*2\r\n$1\r\na\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*1\r\n$1\r\nk\r\n", nil, "odd"},
		{"bulk without crlf", "*1\r\n*2\r\n$1\r\naXY", nil, "CRLF"},
		{"huge bulk", "*1\r\n*2\r\n$99999999999\r\n", nil, "bad length"},
		{"bulk over limit", "*1\r\n*2\r\n$999999999\r\n", nil, "over the limit"},
		{"negative length", "*-2\r\n", nil, "bad length"},
		{"truncated", "*1\r\n*2\r\n$1\r\na\r\n*1\r\n", nil, "EOF"},
		{"no crlf", "*1\n", nil, "malformed"},
		{"wrong type", ":1\r\n", nil, "want an array"},
		{"null field", "*1\r\n*2\r\n$1\r\na\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nk\r\n$-1\r\n", nil, "null field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse([]byte(tt.data), []string{"a"})
			switch {
			case tt.wantErr == "nil":
				if !errors.Is(err, redis.Nil) {
					t.Fatalf("err %v, want redis.Nil", err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("err %v", err)
			}
			if tt.wantErr == "" && !equalEntries(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func equalEntries(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Stream != b[i].Stream || a[i].ID != b[i].ID || strings.Join(a[i].Fields, "\x00") != strings.Join(b[i].Fields, "\x00") || len(a[i].Fields) != len(b[i].Fields) {
			return false
		}
	}
	return true
}

// FuzzReadReply: any bytes give entries or an error, never a panic; what
// parses re-encodes to the same entries.
func FuzzReadReply(f *testing.F) {
	f.Add(encode([]Entry{{Stream: "a", ID: "1-0", Fields: []string{"k", "v"}}}))
	f.Add([]byte("*-1\r\n"))
	f.Add([]byte("*1\r\n*2\r\n$1\r\na\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nk\r\n$0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parse(data, []string{"a"})
		if err != nil {
			return
		}
		again, err := parse(encode(got), nil)
		if err != nil && len(got) > 0 {
			t.Fatalf("re-encoded entries do not parse: %v", err)
		}
		if len(got) > 0 && !equalEntries(got, again) {
			t.Fatalf("round trip changed entries: %+v → %+v", got, again)
		}
	})
}

// BenchmarkReadReply parses a reply of 256 typical 16-field entries.
func BenchmarkReadReply(b *testing.B) {
	fields := []string{
		"id", "0190a6f1-8d0c-7a3e-9b1e-3c8f6a2b4d5e", "event_type", "users.created", "schema", "tenant_acme",
		"aggregate_id", "0190a6f1-8d0c-7a3e-9b1e-3c8f6a2b4d5f", "aggregate_type", "user", "event_version", "1",
		"correlation_id", "0190a6f1-8d0c-7a3e-9b1e-3c8f6a2b4d60", "priority", "normal",
		"partition_key", "0190a6f1-8d0c-7a3e-9b1e-3c8f6a2b4d5f", "source_service", "users-api",
		"source_version", "1.4.2", "max_retries", "3", "created_at", "2026-11-27T20:00:00.123456Z",
		"event_data", `{"email":"a@example.com","name":"` + strings.Repeat("n", 200) + `"}`,
		"event_metadata", `{"ip":"10.0.0.1"}`, "user_id", "0190a6f1-8d0c-7a3e-9b1e-3c8f6a2b4d61",
	}
	entries := make([]Entry, 256)
	for i := range entries {
		entries[i] = Entry{Stream: "neo:events:users:0", ID: "1764273600000-" + itoa(int64(i)), Fields: fields}
	}
	data := encode(entries)
	keys := []string{"neo:events:users:0"}
	rd := bytes.NewReader(data)
	c := &Conn{br: bufio.NewReaderSize(rd, 64<<10)}
	dst := make([]Entry, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rd.Reset(data)
		c.br.Reset(rd)
		var err error
		if dst, err = c.readReply(dst[:0], keys); err != nil || len(dst) != 256 {
			b.Fatal(err, len(dst))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256), "ns/entry")
}

// TestEntriesDoNotShareRoom: entries' Fields come from one slab, but an
// append to one never overwrites the next.
func TestEntriesDoNotShareRoom(t *testing.T) {
	in := []Entry{
		{Stream: "a", ID: "1-0", Fields: []string{"k", "1"}},
		{Stream: "a", ID: "1-1", Fields: []string{"k", "2"}},
	}
	got, err := parse(encode(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got[0].Fields, "x", "y")
	if !equalEntries(got, in) {
		t.Fatalf("after an append to the first entry: %+v", got)
	}
}
