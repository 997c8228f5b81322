package consumer

import (
	"bytes"
	"errors"
	"fmt"
)

// The read loop sends XREADGROUP as a raw command and parses the reply
// itself: go-redis's XReadGroup builds a map[string]interface{} per entry,
// a string per field name and value and an interface box per value, about
// sixty allocations for a typical event entry, all garbage once the entry
// is decoded. parseXRead makes one per entry, a string holding the
// entry's bytes, which its id, field names and values slice, and takes the
// pairs' slices from a slab shared by about twenty entries.

// ReplyError is an error reply of Redis (such as NOGROUP) to a read.
type ReplyError string

func (e ReplyError) Error() string { return string(e) }

// errNoEntries is a null reply: the read timed out (or was unblocked)
// with nothing new.
var errNoEntries = errors.New("no entries")

// parseXRead appends the entries of an XREADGROUP reply, in RESP2 (an array
// of [stream, entries] pairs) or RESP3 (a map of stream to entries), to dst.
// keys are the streams read: a delivery's Stream is the key itself, not a
// copy. An entry whose fields are null (deleted while pending) has nil
// Fields.
func parseXRead(dst []Delivery, raw []byte, keys []string) ([]Delivery, error) {
	p := respParser{b: raw}
	kind, n, err := p.header()
	if err != nil {
		return dst, err
	}
	switch {
	case n < 0:
		return dst, errNoEntries
	case kind != '*' && kind != '%':
		return dst, fmt.Errorf("xreadgroup reply: unexpected %q", kind)
	}
	for range n {
		if kind == '*' {
			if err := p.array(2); err != nil {
				return dst, err
			}
		}
		lo, hi, err := p.bulk()
		if err != nil {
			return dst, err
		}
		stream := keyOf(keys, raw[lo:hi])
		if dst, err = p.entries(dst, stream); err != nil {
			return dst, err
		}
	}
	if p.i != len(raw) {
		return dst, fmt.Errorf("xreadgroup reply: %d bytes after the reply", len(raw)-p.i)
	}
	return dst, nil
}

// keyOf is the key among keys equal to b, or a copy of b.
func keyOf(keys []string, b []byte) string {
	for _, k := range keys {
		if k == string(b) {
			return k
		}
	}
	return string(b)
}

type respParser struct {
	b    []byte
	i    int
	err  error // of length
	offs []int // entry: offsets of id and each field name and value (lo, hi)
	slab []string
}

// header reads a type line: its kind and, for aggregates and bulk strings,
// its length (-1: null). A simple error reply is returned as a ReplyError.
func (p *respParser) header() (byte, int, error) {
	if p.i >= len(p.b) {
		return 0, 0, errors.New("xreadgroup reply: truncated")
	}
	kind := p.b[p.i]
	switch kind {
	case '*', '%', '$':
		return kind, p.length(), p.err
	case '_':
		return kind, -1, p.lineEnd(p.i + 1)
	case '+', ':':
		return kind, 0, p.lineEnd(p.i + 1)
	case '-':
		start := p.i + 1
		if err := p.lineEnd(start); err != nil {
			return kind, 0, err
		}
		return kind, 0, ReplyError(p.b[start : p.i-2])
	}
	return kind, 0, fmt.Errorf("xreadgroup reply: unexpected %q", truncated(p.b[p.i:]))
}

// length reads the length of an aggregate or bulk string header (digits,
// or -1), setting p.err if it is none.
func (p *respParser) length() int {
	i, n := p.i+1, 0
	if i+1 < len(p.b) && p.b[i] == '-' && p.b[i+1] == '1' {
		n, i = -1, i+2
	} else {
		start := i
		for ; i < len(p.b) && p.b[i] >= '0' && p.b[i] <= '9' && i-start < 10; i++ {
			n = n*10 + int(p.b[i]-'0')
		}
		if i == start {
			p.err = fmt.Errorf("xreadgroup reply: bad length %q", truncated(p.b[p.i:]))
			return 0
		}
	}
	if i+1 >= len(p.b) || p.b[i] != '\r' || p.b[i+1] != '\n' {
		p.err = fmt.Errorf("xreadgroup reply: bad length %q", truncated(p.b[p.i:]))
		return 0
	}
	p.i = i + 2
	return n
}

// lineEnd moves past the CRLF that ends the line going on at i.
func (p *respParser) lineEnd(i int) error {
	end := bytes.IndexByte(p.b[i:], '\n')
	if end < 1 || p.b[i+end-1] != '\r' {
		return errors.New("xreadgroup reply: truncated")
	}
	p.i = i + end + 1
	return nil
}

func truncated(b []byte) []byte { return b[:min(len(b), 40)] }

// array reads an array header of exactly n elements.
func (p *respParser) array(n int) error {
	kind, got, err := p.header()
	if err != nil {
		return err
	}
	if kind != '*' || got != n {
		return fmt.Errorf("xreadgroup reply: want an array of %d, got %q %d", n, kind, got)
	}
	return nil
}

// bulk reads a bulk or simple string and returns where its bytes are.
func (p *respParser) bulk() (lo, hi int, err error) {
	start := p.i
	kind, n, err := p.header()
	if err != nil {
		return 0, 0, err
	}
	switch {
	case kind == '+':
		return start + 1, p.i - 2, nil
	case kind != '$' || n < 0:
		return 0, 0, fmt.Errorf("xreadgroup reply: want a string, got %q", kind)
	case n > len(p.b)-p.i-2 || p.b[p.i+n] != '\r' || p.b[p.i+n+1] != '\n':
		return 0, 0, errors.New("xreadgroup reply: truncated string")
	}
	lo, hi = p.i, p.i+n
	p.i = hi + 2
	return lo, hi, nil
}

// entries appends the deliveries of one stream's entries.
func (p *respParser) entries(dst []Delivery, stream string) ([]Delivery, error) {
	kind, n, err := p.header()
	if err != nil {
		return dst, err
	}
	if n < 0 {
		return dst, nil
	}
	if kind != '*' {
		return dst, fmt.Errorf("xreadgroup reply: want the entries of %s, got %q", stream, kind)
	}
	for range n {
		d, err := p.entry()
		if err != nil {
			return dst, err
		}
		d.Stream = stream
		dst = append(dst, d)
	}
	return dst, nil
}

// slabStrings is how many strings the entries' Fields are taken from at a
// time: one allocation for about twenty typical entries, and no entry
// keeps more than 16 KiB of others' pairs reachable.
const slabStrings = 1024

// fields returns room for n strings, from the current slab while it has
// room.
func (p *respParser) fields(n int) []string {
	if cap(p.slab)-len(p.slab) < n {
		p.slab = make([]string, 0, max(n, slabStrings))
	}
	f := p.slab[len(p.slab) : len(p.slab)+n : len(p.slab)+n]
	p.slab = p.slab[:len(p.slab)+n]
	return f
}

// entry reads [id, fields] (or [id, fields, idle ms, delivery count], as
// XREADGROUP CLAIM returns them).
func (p *respParser) entry() (Delivery, error) {
	kind, n, err := p.header()
	if err != nil {
		return Delivery{}, err
	}
	if kind != '*' || (n != 2 && n != 4) {
		return Delivery{}, fmt.Errorf("xreadgroup reply: want an entry, got %q %d", kind, n)
	}
	start := p.i
	lo, hi, err := p.bulk()
	if err != nil {
		return Delivery{}, err
	}
	p.offs = append(p.offs[:0], lo, hi)
	kind, pairs, err := p.header()
	switch {
	case err != nil:
		return Delivery{}, err
	case pairs < 0:
		pairs = -1
	case kind == '*' && pairs%2 == 0:
		pairs /= 2
	case kind != '%':
		return Delivery{}, fmt.Errorf("xreadgroup reply: want an entry's fields, got %q %d", kind, pairs)
	}
	for range max(pairs, 0) * 2 {
		lo, hi, err := p.bulk()
		if err != nil {
			return Delivery{}, err
		}
		p.offs = append(p.offs, lo, hi)
	}
	end := p.i
	for range n - 2 {
		if kind, _, err := p.header(); err != nil || kind != ':' {
			return Delivery{}, fmt.Errorf("xreadgroup reply: want an entry's claim counts, got %q (%v)", kind, err)
		}
	}
	// One string for the entry; its id, names and values are slices of it.
	text := string(p.b[start:end])
	at := func(k int) string { return text[p.offs[k]-start : p.offs[k+1]-start] }
	d := Delivery{ID: at(0)}
	if pairs >= 0 {
		d.Fields = p.fields(2 * pairs)
		for k := range d.Fields {
			d.Fields[k] = at(2 + 2*k)
		}
	}
	return d, nil
}
