package store

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/neo-events/neo-events/event"
)

// argOIDs maps the unnest array types of the statements to their OIDs, as
// the statement descriptions pgx caches declare them.
var argOIDs = map[string]uint32{
	"uuid": pgtype.UUIDArrayOID, "text": pgtype.TextArrayOID, "timestamptz": pgtype.TimestamptzArrayOID,
	"int4": pgtype.Int4ArrayOID, "bool": pgtype.BoolArrayOID,
}

// encodeArgs encodes args in binary as pgx's extended protocol does.
func encodeArgs(tb testing.TB, m *pgtype.Map, oids []uint32, args []any, buf []byte) []byte {
	if len(oids) != len(args) {
		tb.Fatalf("%d oids for %d args", len(oids), len(args))
	}
	for i, a := range args {
		var err error
		if buf, err = m.Encode(oids[i], pgtype.BinaryFormatCode, a, buf); err != nil {
			tb.Fatalf("arg %d: %v", i, err)
		}
	}
	return buf
}

func benchStatusUpdates(n int) []StatusUpdate {
	now := event.Now()
	ms := int32(3)
	ups := make([]StatusUpdate, n)
	for i := range ups {
		ups[i] = StatusUpdate{ID: uuid.New(), Status: event.StatusCompleted, ProcessingStartedAt: now,
			ProcessingCompletedAt: now, ProcessingDurationMS: &ms, MessageID: "1700000000000-0"}
	}
	return ups
}

func benchExecutions(n int) []Execution {
	now := event.Now()
	ms := int32(3)
	action := uuid.New()
	xs := make([]Execution, n)
	for i := range xs {
		xs[i] = Execution{ID: uuid.New(), EventID: uuid.New(), ActionID: action, Status: ExecCompleted,
			QueuedAt: now, StartedAt: now, CompletedAt: now.Add(time.Millisecond), DurationMS: &ms, Attempt: 1,
			QueueMessageID: "1700000000000-0", WorkerID: "bench"}
	}
	return xs
}

// BenchmarkStatusArgs builds and encodes the UPDATE's arguments for 1000
// status updates, the Go work of one flush's status statement.
func BenchmarkStatusArgs(b *testing.B) {
	ups := benchStatusUpdates(1000)
	oids := []uint32{pgtype.UUIDArrayOID, pgtype.TextArrayOID, pgtype.TimestamptzArrayOID, pgtype.TimestamptzArrayOID,
		pgtype.Int4ArrayOID, pgtype.Int4ArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID,
		pgtype.TextArrayOID}
	m := pgtype.NewMap()
	var buf []byte
	var arr StatusArrays // a status writer's, reused
	b.ReportAllocs()
	for b.Loop() {
		_, args, _, err := updateStatement("tenant_bench", ups, &arr)
		if err != nil {
			b.Fatal(err)
		}
		buf = encodeArgs(b, m, oids, args, buf[:0])
	}
}

// BenchmarkExecArgs builds and encodes the executions INSERT's arguments
// for 1000 executions.
func BenchmarkExecArgs(b *testing.B) {
	xs := benchExecutions(1000)
	oids := make([]uint32, len(execSQLTypes))
	for i, t := range execSQLTypes {
		oids[i] = argOIDs[t]
	}
	m := pgtype.NewMap()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		_, args, err := execStatement("tenant_bench", xs, statsReturned|newOnly)
		if err != nil {
			b.Fatal(err)
		}
		buf = encodeArgs(b, m, oids, args, buf[:0])
	}
}

// BenchmarkAppendExecutionsCopy encodes 1000 typical worker executions for
// the COPY a status flush sends (compare BenchmarkExecArgs, the INSERT's
// arrays for the same rows).
func BenchmarkAppendExecutionsCopy(b *testing.B) {
	xs := benchExecutions(1000)
	now := time.Now()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendExecutionsCopy(buf[:0], xs, now)
	}
	b.ReportMetric(float64(len(buf))/float64(len(xs)), "bytes/row")
}
