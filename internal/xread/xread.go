// Package xread is a worker's read connection: a Redis connection of its
// own that runs XREADGROUP and parses the reply straight into entries whose
// fields are flat key/value string pairs.
//
// go-redis returns every entry as a map[string]interface{}: for the usual
// 16-field event entry that is about 1.5 KB and some 50 allocations, the
// largest share of what a worker allocated per event (and so of the time
// its garbage collector took). Here an entry costs two allocations: one
// string holding its id and all its fields, and the slice of pairs that
// points into it.
//
// The connection speaks RESP2 (it sends no HELLO), authenticates and
// selects the database as the go-redis client's options say, and dials
// with the client's own dialer (TLS, Sentinel failover). Options it cannot
// honour (a streaming credentials provider) make Dial return
// ErrUnsupported; callers then read through go-redis instead.
package xread

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Entry is one stream entry of a reply.
type Entry struct {
	Stream string
	ID     string
	// Fields are the entry's fields as read: key, value, key, value, ...
	// Nil for an entry deleted since it was delivered (only history
	// reads, not ">", return those).
	Fields []string
}

// Args is one XREADGROUP call: new entries (">") of every stream.
type Args struct {
	Group    string
	Consumer string
	Streams  []string
	Count    int
	// Block is how long Redis waits for entries; 0 waits forever, a
	// negative value not at all.
	Block time.Duration
}

// Error is an error reply from Redis, such as "NOGROUP No such key ...".
// The connection stays usable after one.
type Error string

func (e Error) Error() string { return string(e) }

// ErrUnsupported: the client's options ask for something this connection
// does not do (a streaming credentials provider).
var ErrUnsupported = errors.New("xread: client options not supported")

// errProtocol marks a reply that is not what XREADGROUP returns; the
// connection is closed after one.
var errProtocol = errors.New("xread: protocol error")

// Limits on what a reply may declare, so that a corrupt or hostile length
// cannot make the reader allocate without bound. Redis' own bulk limit
// (proto-max-bulk-len) defaults to 512 MB.
const (
	maxBulk  = 512 << 20
	maxArray = 1 << 24
	// preallocation from a declared array length is capped: the memory
	// grows with what arrives, not with what is announced.
	maxPrealloc = 1024
)

// Conn is one read connection. It is not safe for concurrent use.
type Conn struct {
	nc    net.Conn
	br    *bufio.Reader
	wbuf  []byte
	arena []byte // the entry being read: its id, then its fields
	ends  []int  // where each of arena's strings ends
	// slab is where the entries' Fields come from: one allocation per
	// few hundred fields instead of one per entry. An entry's Fields keep
	// the slab alive only as long as the entry is worked on.
	slab   []string
	id     int64
	rto    time.Duration // go-redis ReadTimeout (<= 0: none): the deadline of a non-blocking call
	broken bool
}

// Dial opens a read connection with the client's options: the dialer, the
// credentials, the database and the client name. ID reports the
// connection's client id (for CLIENT UNBLOCK).
func Dial(ctx context.Context, opt *redis.Options) (*Conn, error) {
	if opt.StreamingCredentialsProvider != nil {
		return nil, ErrUnsupported
	}
	user, pass := opt.Username, opt.Password
	switch {
	case opt.CredentialsProviderContext != nil:
		var err error
		if user, pass, err = opt.CredentialsProviderContext(ctx); err != nil {
			return nil, fmt.Errorf("xread: credentials: %w", err)
		}
	case opt.CredentialsProvider != nil:
		user, pass = opt.CredentialsProvider()
	}
	dial := opt.Dialer
	if dial == nil {
		dial = redis.NewDialer(opt)
	}
	network := opt.Network
	if network == "" {
		network = "tcp"
	}
	nc, err := dial(ctx, network, opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("xread: dial %s: %w", opt.Addr, err)
	}
	c := &Conn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), rto: opt.ReadTimeout}
	if err := c.handshake(ctx, user, pass, opt.DB, opt.ClientName); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

// handshake authenticates, selects the database, names the connection and
// reads its client id, in one round trip.
func (c *Conn) handshake(ctx context.Context, user, pass string, db int, name string) error {
	c.wbuf = c.wbuf[:0]
	var cmds []string
	switch {
	case pass != "" && user != "":
		c.wbuf = appendCommand(c.wbuf, "AUTH", user, pass)
		cmds = append(cmds, "AUTH")
	case pass != "":
		c.wbuf = appendCommand(c.wbuf, "AUTH", pass)
		cmds = append(cmds, "AUTH")
	}
	if db != 0 {
		c.wbuf = appendCommand(c.wbuf, "SELECT", strconv.Itoa(db))
		cmds = append(cmds, "SELECT")
	}
	if name != "" {
		c.wbuf = appendCommand(c.wbuf, "CLIENT", "SETNAME", name)
		cmds = append(cmds, "CLIENT SETNAME")
	}
	c.wbuf = appendCommand(c.wbuf, "CLIENT", "ID")
	stop := c.watch(ctx, c.rto)
	defer stop()
	if _, err := c.nc.Write(c.wbuf); err != nil {
		return fmt.Errorf("xread: handshake: %w", err)
	}
	// Read every reply before judging any, so that the first error is the
	// one reported.
	var first error
	for _, cmd := range cmds {
		if err := c.readOK(); err != nil && first == nil {
			first = fmt.Errorf("xread: %s: %w", cmd, err)
		}
	}
	id, err := c.readInt()
	if first != nil {
		return first
	}
	if err != nil {
		return fmt.Errorf("xread: CLIENT ID: %w", err)
	}
	c.id = id
	return nil
}

// ID is the connection's Redis client id.
func (c *Conn) ID() int64 { return c.id }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// Broken reports whether the connection is out of step with Redis (a
// network or protocol error, a cancelled read) and must be closed.
func (c *Conn) Broken() bool { return c.broken }

// ReadGroup runs XREADGROUP for a's streams and appends the entries of the
// reply to dst. It returns redis.Nil when Block passed without entries, an
// Error for an error reply (the connection stays usable), and otherwise
// any error with the connection broken. A ctx that ends interrupts a
// blocked read (and breaks the connection).
func (c *Conn) ReadGroup(ctx context.Context, dst []Entry, a Args) ([]Entry, error) {
	if c.broken {
		return dst, errors.New("xread: connection broken by an earlier error")
	}
	c.wbuf = appendReadGroup(c.wbuf[:0], a)
	timeout := c.rto
	switch {
	case a.Block > 0:
		timeout = a.Block + 10*time.Second // as go-redis does for blocking reads
	case a.Block == 0:
		timeout = 0
	}
	stop := c.watch(ctx, timeout)
	defer stop()
	if _, err := c.nc.Write(c.wbuf); err != nil {
		c.broken = true
		return dst, c.cause(ctx, fmt.Errorf("xread: write XREADGROUP: %w", err))
	}
	out, err := c.readReply(dst, a.Streams)
	var rerr Error
	if err != nil && !errors.Is(err, redis.Nil) && !errors.As(err, &rerr) {
		c.broken = true
		return dst, c.cause(ctx, err)
	}
	return out, err
}

// watch sets the connection's deadline (none for timeout <= 0) and makes
// ctx's end interrupt the I/O; call the returned func when done.
func (c *Conn) watch(ctx context.Context, timeout time.Duration) func() {
	var dl time.Time
	if timeout > 0 {
		dl = time.Now().Add(timeout)
	}
	_ = c.nc.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// cause prefers ctx's error to the I/O error it caused.
func (c *Conn) cause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("xread: %w", context.Cause(ctx))
	}
	return err
}

func appendReadGroup(b []byte, a Args) []byte {
	n := 4 + 2*len(a.Streams) + 1
	if a.Count > 0 {
		n += 2
	}
	if a.Block >= 0 {
		n += 2
	}
	b = appendHeader(b, '*', n)
	b = appendBulk(b, "XREADGROUP")
	b = appendBulk(b, "GROUP")
	b = appendBulk(b, a.Group)
	b = appendBulk(b, a.Consumer)
	if a.Count > 0 {
		b = appendBulk(b, "COUNT")
		b = appendBulkInt(b, int64(a.Count))
	}
	if a.Block >= 0 {
		b = appendBulk(b, "BLOCK")
		b = appendBulkInt(b, a.Block.Milliseconds())
	}
	b = appendBulk(b, "STREAMS")
	for _, s := range a.Streams {
		b = appendBulk(b, s)
	}
	for range a.Streams {
		b = appendBulk(b, ">")
	}
	return b
}

func appendCommand(b []byte, args ...string) []byte {
	b = appendHeader(b, '*', len(args))
	for _, a := range args {
		b = appendBulk(b, a)
	}
	return b
}

func appendHeader(b []byte, kind byte, n int) []byte {
	b = append(b, kind)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

func appendBulk(b []byte, s string) []byte {
	b = appendHeader(b, '$', len(s))
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendBulkInt(b []byte, n int64) []byte {
	var tmp [20]byte
	return appendBulk(b, string(strconv.AppendInt(tmp[:0], n, 10)))
}

// readReply parses an XREADGROUP reply (RESP2: an array of [stream,
// [[id, [field, value, ...]], ...]] pairs, or a null array on timeout).
// keys are the streams asked for: an entry's Stream is the caller's own
// string, not a new one.
func (c *Conn) readReply(dst []Entry, keys []string) ([]Entry, error) {
	n, err := c.readArray()
	if err != nil {
		return dst, err // an Error here is the command's own: the reply is complete
	}
	if n < 0 {
		return dst, redis.Nil
	}
	dst, err = c.readStreams(dst, n, keys)
	var rerr Error
	if errors.As(err, &rerr) {
		// An error reply inside a reply is not XREADGROUP's.
		err = fmt.Errorf("%w: error reply inside a reply: %s", errProtocol, string(rerr))
	}
	if cap(c.arena) > 4<<20 {
		c.arena = nil // one huge entry: do not keep its buffer
	}
	return dst, err
}

func (c *Conn) readStreams(dst []Entry, n int, keys []string) ([]Entry, error) {
	for range n {
		if err := c.expectArray(2); err != nil {
			return dst, err
		}
		stream, err := c.readStream(keys)
		if err != nil {
			return dst, err
		}
		m, err := c.readArray()
		if err != nil {
			return dst, err
		}
		for range max(m, 0) {
			e, err := c.readEntry()
			if err != nil {
				return dst, err
			}
			e.Stream = stream
			dst = append(dst, e)
		}
	}
	return dst, nil
}

// readStream reads a stream name, as the matching key when there is one.
func (c *Conn) readStream(keys []string) (string, error) {
	c.arena, c.ends = c.arena[:0], c.ends[:0]
	null, err := c.readBulk()
	if err != nil {
		return "", err
	}
	if null {
		return "", fmt.Errorf("%w: null stream name", errProtocol)
	}
	for _, k := range keys {
		if k == string(c.arena) {
			return k, nil
		}
	}
	return string(c.arena), nil
}

// readEntry reads one [id, [field, value, ...]] into a single string.
func (c *Conn) readEntry() (Entry, error) {
	if err := c.expectArray(2); err != nil {
		return Entry{}, err
	}
	c.arena, c.ends = c.arena[:0], c.ends[:0]
	null, err := c.readBulk()
	if err != nil {
		return Entry{}, err
	}
	if null {
		return Entry{}, fmt.Errorf("%w: null entry id", errProtocol)
	}
	k, err := c.readArray()
	if err != nil {
		return Entry{}, err
	}
	if k%2 != 0 {
		return Entry{}, fmt.Errorf("%w: entry with %d field strings (odd)", errProtocol, k)
	}
	for range max(k, 0) {
		null, err := c.readBulk()
		if err != nil {
			return Entry{}, err
		}
		if null {
			return Entry{}, fmt.Errorf("%w: null field", errProtocol)
		}
	}
	s := string(c.arena)
	e := Entry{ID: s[:c.ends[0]]}
	if k >= 0 {
		e.Fields = c.fields(k)
		for i := range k {
			e.Fields[i] = s[c.ends[i]:c.ends[i+1]]
		}
	}
	return e, nil
}

// slabSize is how many strings a slab holds: 16 entries of 16 fields.
const slabSize = 512

// fields returns room for k strings, full length, capacity k: an append
// to one entry's Fields never writes into the next one's.
func (c *Conn) fields(k int) []string {
	if k > slabSize/4 {
		return make([]string, k)
	}
	if len(c.slab)+k > cap(c.slab) {
		c.slab = make([]string, 0, slabSize)
	}
	n := len(c.slab)
	c.slab = c.slab[:n+k]
	return c.slab[n : n+k : n+k]
}

// line reads one header line and returns its kind and its text without
// the CRLF. An error reply comes back as an Error.
func (c *Conn) line() (byte, []byte, error) {
	l, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, nil, fmt.Errorf("%w: header line longer than %d bytes", errProtocol, c.br.Size())
		}
		return 0, nil, fmt.Errorf("xread: read reply: %w", err)
	}
	if len(l) < 3 || l[len(l)-2] != '\r' {
		return 0, nil, fmt.Errorf("%w: malformed line %q", errProtocol, l)
	}
	kind, text := l[0], l[1:len(l)-2]
	if kind == '-' {
		return kind, nil, Error(text)
	}
	return kind, text, nil
}

// readArray reads an array header: its length, or -1 for a null array.
func (c *Conn) readArray() (int, error) {
	kind, text, err := c.line()
	if err != nil {
		return 0, err
	}
	switch kind {
	case '*':
		return parseLen(text, maxArray)
	case '_': // RESP3 null, should a server answer with one
		return -1, nil
	}
	return 0, fmt.Errorf("%w: want an array, got %q", errProtocol, kind)
}

func (c *Conn) expectArray(n int) error {
	got, err := c.readArray()
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("%w: want an array of %d, got %d", errProtocol, n, got)
	}
	return nil
}

// readBulk appends one bulk string to the arena (recording its end) and
// reports whether it was null.
func (c *Conn) readBulk() (null bool, err error) {
	kind, text, err := c.line()
	if err != nil {
		return false, err
	}
	if kind != '$' {
		return false, fmt.Errorf("%w: want a bulk string, got %q", errProtocol, kind)
	}
	n, err := parseLen(text, maxBulk)
	if err != nil {
		return false, err
	}
	if n < 0 {
		return true, nil
	}
	off := len(c.arena)
	if c.br.Buffered() >= n+2 {
		// The usual case: copy straight from the buffer.
		b, _ := c.br.Peek(n + 2)
		c.arena = append(c.arena, b...)
		_, _ = c.br.Discard(n + 2)
	} else {
		c.arena = append(c.arena, make([]byte, n+2)...)
		if _, err := io.ReadFull(c.br, c.arena[off:]); err != nil {
			return false, fmt.Errorf("xread: read reply: %w", err)
		}
	}
	if c.arena[off+n] != '\r' || c.arena[off+n+1] != '\n' {
		return false, fmt.Errorf("%w: bulk string not followed by CRLF", errProtocol)
	}
	c.arena = c.arena[:off+n]
	c.ends = append(c.ends, len(c.arena))
	return false, nil
}

// parseLen parses a length: -1 (null) or 0..limit.
func parseLen(b []byte, limit int) (int, error) {
	if len(b) == 2 && b[0] == '-' && b[1] == '1' {
		return -1, nil
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, fmt.Errorf("%w: bad length %q", errProtocol, b)
	}
	n := 0
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, fmt.Errorf("%w: bad length %q", errProtocol, b)
		}
		n = n*10 + int(ch-'0')
	}
	if n > limit {
		return 0, fmt.Errorf("%w: length %d over the limit %d", errProtocol, n, limit)
	}
	return n, nil
}

// readOK reads a status reply (+OK).
func (c *Conn) readOK() error {
	kind, _, err := c.line()
	if err != nil {
		return err
	}
	if kind != '+' {
		return fmt.Errorf("%w: want a status reply, got %q", errProtocol, kind)
	}
	return nil
}

// readInt reads an integer reply.
func (c *Conn) readInt() (int64, error) {
	kind, text, err := c.line()
	if err != nil {
		return 0, err
	}
	if kind != ':' {
		return 0, fmt.Errorf("%w: want an integer, got %q", errProtocol, kind)
	}
	n, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: bad integer %q", errProtocol, text)
	}
	return n, nil
}
