package consumer

import (
	"errors"
	"fmt"
	"strings"
)

// The raw reply of XREADGROUP, in either protocol go-redis may negotiate:
//
//	RESP2: *<n streams> of *2 [<stream> <entries>], or *-1 when nothing came
//	RESP3: %<n streams> of <stream> <entries>, or _ when nothing came
//	entries: *<m> of *2 [<id> <fields>] (*4 with XREADGROUP ... CLAIM: two integers follow)
//	fields:  *<2k> of <field> <value>, or *-1 / _ for an entry deleted while pending
//
// An error reply (-NOGROUP ...) becomes an error whose text is the
// reply's. Every string handed out is a substring of the reply, so a read
// costs a few allocations whatever the number of fields.

// respError is an error reply of Redis. Its text is the reply's, so
// callers match it by prefix as they do go-redis's errors.
type respError string

func (e respError) Error() string { return string(e) }

// RedisError marks it as a Redis error reply (redis.Error).
func (e respError) RedisError() {}

var errTruncated = errors.New("truncated")

// parseReadReply appends the entries of XREADGROUP's raw reply s to dst,
// leaving out entries deleted while pending.
func parseReadReply(s string, dst []Delivery) ([]Delivery, error) {
	p := respParser{s: s}
	out, err := p.reply(dst)
	if err == nil && p.pos != len(s) {
		err = errors.New("trailing bytes after the reply")
	}
	if err != nil {
		var re respError
		if errors.As(err, &re) {
			return dst, err
		}
		return dst, fmt.Errorf("consumer: malformed XREADGROUP reply at byte %d: %w", p.pos, err)
	}
	return out, nil
}

// respParser reads RESP from s, starting at pos.
type respParser struct {
	s   string
	pos int
	// pool holds the field pairs of the entries; each entry's Fields is a
	// full slice expression of it, so one allocation serves many entries.
	pool []string
}

func (p *respParser) reply(dst []Delivery) ([]Delivery, error) {
	typ, text, err := p.line()
	if err != nil {
		return dst, err
	}
	switch typ {
	case '-':
		return dst, respError(text)
	case '!':
		n, err := parseLength(text)
		if err != nil {
			return dst, err
		}
		msg, err := p.body(n)
		if err != nil {
			return dst, err
		}
		return dst, respError(msg)
	case '_':
		return dst, nil
	case '*', '%':
		n, err := p.count(text, 1)
		if err != nil || n < 0 {
			return dst, err // *-1: nothing came
		}
		for range n {
			if typ == '*' {
				if err := p.fixedArray(2); err != nil {
					return dst, err
				}
			}
			stream, err := p.str()
			if err != nil {
				return dst, err
			}
			if dst, err = p.entries(stream, dst); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	return dst, fmt.Errorf("unexpected reply type %q", typ)
}

// entries reads one stream's entries.
func (p *respParser) entries(stream string, dst []Delivery) ([]Delivery, error) {
	m, err := p.array(1)
	if err != nil || m < 0 {
		return dst, err
	}
	for i := range m {
		n, err := p.array(1)
		if err != nil {
			return dst, err
		}
		if n != 2 && n != 4 {
			return dst, fmt.Errorf("an entry of %d elements, want 2 or 4", n)
		}
		id, err := p.str()
		if err != nil {
			return dst, err
		}
		fields, err := p.fields(m - i)
		if err != nil {
			return dst, err
		}
		if n == 4 { // idle time and delivery count (XREADGROUP ... CLAIM)
			for range 2 {
				if typ, _, err := p.line(); err != nil || typ != ':' {
					return dst, errors.Join(err, errors.New("want an integer after the entry's fields"))
				}
			}
		}
		if fields != nil {
			dst = append(dst, Delivery{Stream: stream, ID: id, Fields: fields})
		}
	}
	return dst, nil
}

// fields reads one entry's field list: nil for a deleted entry. left is
// how many entries of the stream are left, this one included, so that the
// pool grows once for them all.
func (p *respParser) fields(left int) ([]string, error) {
	typ, text, err := p.line()
	if err != nil {
		return nil, err
	}
	var n int
	switch typ {
	case '_':
		return nil, nil
	case '*':
		if n, err = p.count(text, 3); err != nil || n < 0 {
			return nil, err
		}
		if n%2 != 0 {
			return nil, fmt.Errorf("an odd number (%d) of field names and values", n)
		}
	case '%':
		if n, err = p.count(text, 6); err != nil || n < 0 {
			return nil, err
		}
		n *= 2
	default:
		return nil, fmt.Errorf("unexpected field list type %q", typ)
	}
	if n == 0 {
		return []string{}, nil // no fields, but not deleted
	}
	if cap(p.pool)-len(p.pool) < n {
		// Room for this entry and, if they are alike, the stream's
		// others, but never more strings than the bytes left could hold.
		p.pool = make([]string, 0, max(n, min(n*left, (len(p.s)-p.pos)/3)))
	}
	start := len(p.pool)
	for range n {
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		p.pool = append(p.pool, v)
	}
	return p.pool[start:len(p.pool):len(p.pool)], nil
}

// line reads one line: its type byte and the text after it.
func (p *respParser) line() (byte, string, error) {
	rest := p.s[p.pos:]
	i := strings.IndexByte(rest, '\n')
	if i < 2 || rest[i-1] != '\r' {
		if i < 0 {
			return 0, "", errTruncated
		}
		return 0, "", errors.New("a line without a type or not ended by CRLF")
	}
	p.pos += i + 1
	return rest[0], rest[1 : i-1], nil
}

// str reads a string: a bulk string, or a simple string or integer as
// their text (what go-redis's ReadString accepts of those).
func (p *respParser) str() (string, error) {
	// Fast path for a well-formed bulk string, nearly every string read.
	s, i := p.s, p.pos
	if i < len(s) && s[i] == '$' {
		n, j := 0, i+1
		for j < len(s) && j-i <= 10 && s[j] >= '0' && s[j] <= '9' {
			n = n*10 + int(s[j]-'0')
			j++
		}
		if j > i+1 && j+1 < len(s) && s[j] == '\r' && s[j+1] == '\n' {
			start := j + 2
			if n <= len(s)-start-2 && s[start+n] == '\r' && s[start+n+1] == '\n' {
				p.pos = start + n + 2
				return s[start : start+n], nil
			}
		}
	}
	return p.strSlow()
}

func (p *respParser) strSlow() (string, error) {
	typ, text, err := p.line()
	if err != nil {
		return "", err
	}
	switch typ {
	case '$':
		n, err := parseLength(text)
		if err != nil {
			return "", err
		}
		return p.body(n)
	case '+', ':':
		return text, nil
	case '-':
		return "", respError(text)
	}
	return "", fmt.Errorf("unexpected string type %q", typ)
}

// body reads n bytes and the CRLF after them.
func (p *respParser) body(n int) (string, error) {
	if n > len(p.s)-p.pos-2 {
		return "", errTruncated
	}
	v := p.s[p.pos : p.pos+n]
	if p.s[p.pos+n] != '\r' || p.s[p.pos+n+1] != '\n' {
		return "", errors.New("a bulk string not ended by CRLF")
	}
	p.pos += n + 2
	return v, nil
}

// array reads an array header: its length, -1 for a null array.
func (p *respParser) array(minElem int) (int, error) {
	typ, text, err := p.line()
	if err != nil {
		return 0, err
	}
	switch typ {
	case '*':
		return p.count(text, minElem)
	case '_':
		return -1, nil
	}
	return 0, fmt.Errorf("unexpected type %q where an array was expected", typ)
}

func (p *respParser) fixedArray(n int) error {
	m, err := p.array(1)
	if err == nil && m != n {
		err = fmt.Errorf("an array of %d elements, want %d", m, n)
	}
	return err
}

// count parses an aggregate's length: -1 (null) or at most what the bytes
// left could hold at minElem bytes an element, so that no bogus length
// makes anything big.
func (p *respParser) count(text string, minElem int) (int, error) {
	if text == "-1" {
		return -1, nil
	}
	n, err := parseLength(text)
	if err == nil && n > (len(p.s)-p.pos)/minElem {
		err = errTruncated
	}
	return n, err
}

// length parses a non-negative decimal length.
func parseLength(text string) (int, error) {
	if text == "" || len(text) > 10 {
		return 0, fmt.Errorf("bad length %q", text)
	}
	n := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad length %q", text)
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}
