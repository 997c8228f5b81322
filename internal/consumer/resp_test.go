package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

// genStream and genEntry describe a reply to encode.
type genStream struct {
	name    string
	entries []genEntry
}

type genEntry struct {
	id      string
	fields  []string
	deleted bool // the field list is null: deleted while pending
}

func bulk(b *strings.Builder, s string) {
	b.WriteString("$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n")
}

// encodeReply writes the XREADGROUP reply of streams as Redis does in
// RESP2 or RESP3.
func encodeReply(streams []genStream, resp3 bool) []byte {
	var b strings.Builder
	if resp3 {
		b.WriteString("%" + strconv.Itoa(len(streams)) + "\r\n")
	} else {
		b.WriteString("*" + strconv.Itoa(len(streams)) + "\r\n")
	}
	for _, s := range streams {
		if !resp3 {
			b.WriteString("*2\r\n")
		}
		bulk(&b, s.name)
		b.WriteString("*" + strconv.Itoa(len(s.entries)) + "\r\n")
		for _, e := range s.entries {
			b.WriteString("*2\r\n")
			bulk(&b, e.id)
			switch {
			case e.deleted && resp3:
				b.WriteString("_\r\n")
			case e.deleted:
				b.WriteString("*-1\r\n")
			default:
				b.WriteString("*" + strconv.Itoa(len(e.fields)) + "\r\n")
				for _, f := range e.fields {
					bulk(&b, f)
				}
			}
		}
	}
	return []byte(b.String())
}

// fromTyped is what the reader made of go-redis's typed result: deliveries
// with the map as pairs (in sorted order), deleted entries left out.
func fromTyped(res []redis.XStream) []Delivery {
	var out []Delivery
	for _, s := range res {
		for _, m := range s.Messages {
			if m.Values == nil {
				continue
			}
			var pairs []string
			for _, k := range slices.Sorted(maps.Keys(m.Values)) {
				pairs = append(pairs, k, m.Values[k].(string))
			}
			out = append(out, Delivery{Stream: s.Stream, ID: m.ID, Fields: pairs})
		}
	}
	return out
}

// canonical sorts each delivery's pairs after collapsing repeated fields
// (last wins), so that ours compare with go-redis's maps.
func canonical(ds []Delivery) []Delivery {
	var out []Delivery
	for _, d := range ds {
		m := map[string]string{}
		for i := 0; i+1 < len(d.Fields); i += 2 {
			m[d.Fields[i]] = d.Fields[i+1]
		}
		var pairs []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			pairs = append(pairs, k, m[k])
		}
		out = append(out, Delivery{Stream: d.Stream, ID: d.ID, Fields: pairs})
	}
	return out
}

func TestParseReadReply(t *testing.T) {
	t.Parallel()
	one := []genStream{{"s", []genEntry{{id: "1-1", fields: []string{"a", "b", "", "", "a", "c"}}}}}
	want := []Delivery{{Stream: "s", ID: "1-1", Fields: []string{"a", "b", "", "", "a", "c"}}}
	tests := []struct {
		name    string
		reply   string
		want    []Delivery
		wantErr string // prefix of the error's text
	}{
		{"RESP2", string(encodeReply(one, false)), want, ""},
		{"RESP3", string(encodeReply(one, true)), want, ""},
		{"RESP2 nothing came", "*-1\r\n", nil, ""},
		{"RESP3 nothing came", "_\r\n", nil, ""},
		{"no streams", "*0\r\n", nil, ""},
		{"an entry without fields is not a deleted one", "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*0\r\n",
			[]Delivery{{Stream: "s", ID: "1-1", Fields: []string{}}}, ""},
		{"deleted entries left out", string(encodeReply([]genStream{{"s", []genEntry{
			{id: "1-1", deleted: true}, {id: "1-2", fields: []string{"k", "v"}}}}}, false)),
			[]Delivery{{Stream: "s", ID: "1-2", Fields: []string{"k", "v"}}}, ""},
		{"fields as a RESP3 map", "%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n%1\r\n$1\r\nk\r\n$1\r\nv\r\n",
			[]Delivery{{Stream: "s", ID: "1-1", Fields: []string{"k", "v"}}}, ""},
		{"simple strings", "*1\r\n*2\r\n+s\r\n*1\r\n*2\r\n+1-1\r\n*2\r\n+k\r\n:12\r\n",
			[]Delivery{{Stream: "s", ID: "1-1", Fields: []string{"k", "12"}}}, ""},
		{"entry with CLAIM metadata", "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*4\r\n$3\r\n1-1\r\n*2\r\n$1\r\nk\r\n$1\r\nv\r\n:5\r\n:2\r\n",
			[]Delivery{{Stream: "s", ID: "1-1", Fields: []string{"k", "v"}}}, ""},
		{"error reply", "-NOGROUP No such key 'x' or consumer group 'g'\r\n", nil, "NOGROUP No such key"},
		{"blob error", "!12\r\nNOGROUP x\r\ny\r\n", nil, "NOGROUP x\r\ny"},
		{"empty", "", nil, "consumer: malformed XREADGROUP reply at byte 0: truncated"},
		{"truncated bulk", "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nk\r\n$9\r\nv\r\n", nil, "consumer: malformed"},
		{"truncated header", "*1\r\n*2\r\n$1\r\ns\r\n*1", nil, "consumer: malformed"},
		{"bulk not ended by CRLF", "*1\r\n*2\r\n$1\r\nsX\r\n*0\r\n", nil, "consumer: malformed"},
		{"odd field count", "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*1\r\n$1\r\nk\r\n", nil, "consumer: malformed"},
		{"stream pair of 3", "*1\r\n*3\r\n$1\r\ns\r\n*0\r\n*0\r\n", nil, "consumer: malformed"},
		{"entry of 3", "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*3\r\n$3\r\n1-1\r\n*0\r\n:1\r\n", nil, "consumer: malformed"},
		{"huge count", "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*999999998\r\n", nil, "consumer: malformed"},
		{"negative length", "*1\r\n*2\r\n$-5\r\n", nil, "consumer: malformed"},
		{"bad length", "*x\r\n", nil, "consumer: malformed"},
		{"LF only", "*0\n", nil, "consumer: malformed"},
		{"trailing bytes", "*0\r\n+OK\r\n", nil, "consumer: malformed"},
		{"wrong type", "+OK\r\n", nil, "consumer: malformed"},
		{"error inside", "*1\r\n*2\r\n-ERR x\r\n*0\r\n", nil, "ERR x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseReadReply(tt.reply, nil)
			if tt.wantErr != "" {
				require.Error(t, err)
				require.True(t, strings.HasPrefix(err.Error(), tt.wantErr), "error %q, want prefix %q", err, tt.wantErr)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseReadReplyMatchesGoRedis reads the same entries from the real
// Redis raw and through go-redis's typed XREADGROUP, in both protocols, and
// requires the same deliveries (ours with the fields in stream order).
func TestParseReadReplyMatchesGoRedis(t *testing.T) {
	t.Parallel()
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			t.Parallel()
			_, prefix := tu.NewRedis(t)
			opt, err := redis.ParseURL(tu.RedisURL())
			require.NoError(t, err)
			opt.Protocol = proto
			rdb := redis.NewClient(opt)
			t.Cleanup(func() { _ = rdb.Close() })
			ctx := tu.Context(t)

			wide := make([]string, 0, 60)
			for i := range 30 {
				wide = append(wide, fmt.Sprintf("field_%02d", i), strings.Repeat(string(rune('a'+i%26)), i*37))
			}
			ev, err := event.New("tenant_acme", "users.created", "user", uuid.New(), json.RawMessage(`{"a":"\r\n$3\r\n"}`))
			require.NoError(t, err)
			evPairs, err := ev.AppendEntry(nil)
			require.NoError(t, err)
			s1, s2 := prefix+":tenants:users:0", prefix+":tenants:ü\r\n:1"
			added := map[string][][]string{
				s1: {
					{"empty", "", "", "empty name"},
					{"bin", "\x00\xff\xfe\x01\r", "\x00", "\n"},
					{"crlf\r\n", "line1\r\nline2\r\n", "resp", "*3\r\n$1\r\nx\r\n", "-ERR", "-ERR no\r\n"},
					wide,
					{"dup", "first", "other", "x", "dup", "last"},
					{"big", strings.Repeat("é", 40000)},
				},
				s2: {evPairs, {"n", "1"}},
			}
			for _, g := range []string{"raw", "typed", "pend"} {
				for _, s := range []string{s1, s2} {
					require.NoError(t, rdb.XGroupCreateMkStream(ctx, s, g, "0").Err())
				}
			}
			ids := map[string][]string{}
			var want []Delivery
			for _, s := range []string{s1, s2} {
				for _, fields := range added[s] {
					id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: fields}).Result()
					require.NoError(t, err)
					ids[s] = append(ids[s], id)
					want = append(want, Delivery{Stream: s, ID: id, Fields: fields})
				}
			}
			raw := func(group, id string) ([]Delivery, error) {
				cmd := redis.NewRawCmd(ctx, "xreadgroup", "group", group, "c", "count", 100, "block", 10,
					"streams", s1, s2, id, id)
				_ = rdb.Process(ctx, cmd)
				b, err := cmd.Result()
				require.NoError(t, err)
				if b[0] != '-' && b[0] != '_' && string(b) != "*-1\r\n" {
					require.Equal(t, map[int]byte{2: '*', 3: '%'}[proto], b[0], "the reply is in RESP%d", proto)
				}
				return parseReadReply(string(b), nil)
			}
			typed := func(group, id string) ([]redis.XStream, error) {
				return rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Count: 100,
					Block: 10 * time.Millisecond, Streams: []string{s1, s2, id, id}}).Result()
			}

			// New entries: every field, in stream order.
			got, err := raw("raw", ">")
			require.NoError(t, err)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("raw read (-want +got):\n%s", diff)
			}
			res, err := typed("typed", ">")
			require.NoError(t, err)
			if diff := cmp.Diff(fromTyped(res), canonical(got)); diff != "" {
				t.Fatalf("raw vs typed (-typed +raw):\n%s", diff)
			}

			// Nothing new: a nil reply after the block.
			got, err = raw("raw", ">")
			require.NoError(t, err)
			require.Empty(t, got)
			_, err = typed("typed", ">")
			require.ErrorIs(t, err, redis.Nil)

			// Pending entries, one deleted since it was delivered.
			_, err = typed("pend", ">")
			require.NoError(t, err)
			require.NoError(t, rdb.XDel(ctx, s1, ids[s1][2]).Err())
			got, err = raw("pend", "0")
			require.NoError(t, err)
			res, err = typed("pend", "0")
			require.NoError(t, err)
			require.Len(t, got, len(want)-1, "the deleted entry is left out")
			if diff := cmp.Diff(fromTyped(res), canonical(got)); diff != "" {
				t.Fatalf("pending: raw vs typed (-typed +raw):\n%s", diff)
			}

			// An error reply keeps Redis's text.
			_, err = raw("nogroup", ">")
			require.Error(t, err)
			_, typedErr := typed("nogroup", ">")
			require.Error(t, typedErr)
			require.Equal(t, typedErr.Error(), err.Error())
			require.True(t, strings.HasPrefix(err.Error(), "NOGROUP"), err.Error())
			var re redis.Error
			require.ErrorAs(t, err, &re)
		})
	}
}

// genFromFuzz builds streams of entries from fuzz input: tokens separated
// by NUL are field names and values; a token "D" is a deleted entry, "E"
// ends an entry, "S" starts another stream.
func genFromFuzz(data string) []genStream {
	streams := []genStream{{name: "s0"}}
	cur := genEntry{fields: []string{}}
	n := 0
	flush := func() {
		s := &streams[len(streams)-1]
		n++
		cur.id = fmt.Sprintf("%d-%d", n, len(cur.fields))
		s.entries = append(s.entries, cur)
		cur = genEntry{fields: []string{}}
	}
	for _, tok := range strings.Split(data, "\x00") {
		switch tok {
		case "D":
			cur.deleted = true
			flush()
		case "E":
			flush()
		case "S":
			streams = append(streams, genStream{name: fmt.Sprintf("s%d\r\n", len(streams))})
		default:
			cur.fields = append(cur.fields, tok)
		}
	}
	if len(cur.fields)%2 != 0 {
		cur.fields = cur.fields[:len(cur.fields)-1]
	}
	if len(cur.fields) > 0 {
		flush()
	}
	for i := range streams {
		for j := range streams[i].entries {
			if f := streams[i].entries[j].fields; len(f)%2 != 0 {
				streams[i].entries[j].fields = f[:len(f)-1]
			}
		}
	}
	return streams
}

// FuzzParseReadReply: no input makes the parser panic or hand out an
// entry with an odd field list; and for replies Redis could send (built
// from the input's entries, in both protocols) it agrees with go-redis.
func FuzzParseReadReply(f *testing.F) {
	f.Add([]byte("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nk\r\n$1\r\nv\r\n"), false)
	f.Add([]byte("k\x00v\x00k\x00w\x00E\x00D\x00S\x00\r\n\x00$3\x00E\x00\x00\x00E"), true)
	f.Add([]byte("%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n_\r\n"), true)
	f.Add([]byte("!3\r\nERR\r\n"), false)
	f.Add([]byte("*2\r\n*2\r\n$1\r\ns\r\n*1\r\n*4\r\n$3\r\n1-1\r\n%1\r\n+k\r\n:1\r\n:5\r\n:2\r\n"), false)
	fc := &fakeConn{}
	cl := newFakeClient(f, fc)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte, resp3 bool) {
		got, err := parseReadReply(string(data), nil)
		if err == nil {
			for _, d := range got {
				if len(d.Fields)%2 != 0 || d.Fields == nil {
					t.Fatalf("entry %q has fields %q", d.ID, d.Fields)
				}
			}
		}

		streams := genFromFuzz(string(data))
		reply := encodeReply(streams, resp3)
		got, err = parseReadReply(string(reply), nil)
		if err != nil {
			t.Fatalf("parse %q: %v", reply, err)
		}
		var want []Delivery
		for _, s := range streams {
			for _, e := range s.entries {
				if !e.deleted {
					want = append(want, Delivery{Stream: s.name, ID: e.id, Fields: e.fields})
				}
			}
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })); diff != "" {
			t.Fatalf("parse of %q (-want +got):\n%s", reply, diff)
		}
		res, err := typedRead(ctx, cl, fc, reply)
		if err != nil {
			t.Fatalf("go-redis could not read %q: %v", reply, err)
		}
		if diff := cmp.Diff(fromTyped(res), canonical(got)); diff != "" {
			t.Fatalf("ours vs go-redis on %q (-go-redis +ours):\n%s", reply, diff)
		}
	})
}

// benchReply is a realistic XREADGROUP reply: 64 typical events (256-byte
// event_data, a correlation id) from one stream.
func benchReply(b *testing.B, resp3 bool) []byte {
	b.Helper()
	data := json.RawMessage(`{"bench":true,"pad":"` + strings.Repeat("x", 230) + `"}`)
	s := genStream{name: "neo:tenants:users:0"}
	for i := range 64 {
		ev, err := event.New("tenant_acme", "users.created", "user", uuid.New(), data)
		if err != nil {
			b.Fatal(err)
		}
		ev.CorrelationID = uuid.New()
		pairs, err := ev.AppendEntry(nil)
		if err != nil {
			b.Fatal(err)
		}
		s.entries = append(s.entries, genEntry{id: fmt.Sprintf("1732700000000-%d", i), fields: pairs})
	}
	return encodeReply([]genStream{s}, resp3)
}

// BenchmarkReadBatch reads a 64-entry reply through a connection in memory
// and decodes its events: go-redis's typed XREADGROUP and DecodeValues (the
// old path) against a raw command, parseReadReply and DecodeFields, with
// the reply written to a kept buffer (writeto, what the reader does) or
// returned by RawCmd (raw). The parse variants leave decoding out.
// ns/entry is ns/op / 64.
func BenchmarkReadBatch(b *testing.B) {
	for _, resp3 := range []bool{true, false} {
		reply := benchReply(b, resp3)
		proto := map[bool]string{true: "RESP3", false: "RESP2"}[resp3]
		for _, decode := range []bool{true, false} {
			what := map[bool]string{true: "+decode", false: "parse"}[decode]
			b.Run(proto+"/typed/"+what, func(b *testing.B) {
				fc := &fakeConn{reply: reply}
				cl := newFakeClient(b, fc)
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					res, err := cl.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c",
						Streams: []string{"neo:tenants:users:0", ">"}, Count: 64, Block: time.Second}).Result()
					if err != nil || len(res[0].Messages) != 64 {
						b.Fatal(err)
					}
					if decode {
						for _, m := range res[0].Messages {
							if _, err := event.DecodeValues(m.Values); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/entry")
			})
			b.Run(proto+"/writeto/"+what, func(b *testing.B) {
				fc := &fakeConn{reply: reply}
				cl := newFakeClient(b, fc)
				ctx := context.Background()
				var buf []Delivery
				var out bytes.Buffer
				b.ReportAllocs()
				for b.Loop() {
					out.Reset()
					cmd := redis.NewRawWriteToCmd(ctx, &out, "xreadgroup", "group", "g", "c", "count", 64, "block", 1000,
						"streams", "neo:tenants:users:0", ">")
					_ = cl.Process(ctx, cmd)
					if err := cmd.Err(); err != nil {
						b.Fatal(err)
					}
					var err error
					if buf, err = parseReadReply(string(out.Bytes()), buf[:0]); err != nil || len(buf) != 64 {
						b.Fatal(err)
					}
					if decode {
						for _, d := range buf {
							if _, err := event.DecodeFields(d.Fields); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/entry")
			})
			b.Run(proto+"/raw/"+what, func(b *testing.B) {
				fc := &fakeConn{reply: reply}
				cl := newFakeClient(b, fc)
				ctx := context.Background()
				var buf []Delivery
				b.ReportAllocs()
				for b.Loop() {
					cmd := redis.NewRawCmd(ctx, "xreadgroup", "group", "g", "c", "count", 64, "block", 1000,
						"streams", "neo:tenants:users:0", ">")
					_ = cl.Process(ctx, cmd)
					raw, err := cmd.Result()
					if err != nil {
						b.Fatal(err)
					}
					if buf, err = parseReadReply(string(raw), buf[:0]); err != nil || len(buf) != 64 {
						b.Fatal(err)
					}
					if decode {
						for _, d := range buf {
							if _, err := event.DecodeFields(d.Fields); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/entry")
			})
		}
	}
}

// BenchmarkParseReadReply is parseReadReply alone on a 64-entry reply.
func BenchmarkParseReadReply(b *testing.B) {
	s := string(benchReply(b, true))
	var buf []Delivery
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = parseReadReply(s, buf[:0]); err != nil || len(buf) != 64 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/entry")
}
