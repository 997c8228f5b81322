package processor

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
)

// appendRecord appends a completed attempt's execution row as the JSON
// object its done-marker holds: what encoding/json would decode back into
// the same store.Execution (decodeRecord), written without reflection
// (json.Marshal of the row was a fifth of a worker's per-event CPU with
// status writes on). Zero fields are left out: they decode to zero, as
// json.Marshal's explicit zeros did, so markers of either encoding read the
// same.
func appendRecord(dst []byte, x *store.Execution) []byte {
	w := recordWriter{b: append(dst, '{')}
	w.uuid("ID", x.ID)
	w.uuid("EventID", x.EventID)
	w.uuid("ActionID", x.ActionID)
	w.str("Status", x.Status)
	w.time("QueuedAt", x.QueuedAt)
	w.time("StartedAt", x.StartedAt)
	w.time("CompletedAt", x.CompletedAt)
	w.int32p("DurationMS", x.DurationMS)
	if x.Attempt != 0 {
		w.key("Attempt")
		w.b = strconv.AppendInt(w.b, int64(x.Attempt), 10)
	}
	if x.IsRetry {
		w.key("IsRetry")
		w.b = append(w.b, "true"...)
	}
	w.uuid("ParentExecutionID", x.ParentExecutionID)
	w.str("ErrorMessage", x.ErrorMessage)
	w.raw("ErrorDetails", x.ErrorDetails)
	w.str("ErrorStackTrace", x.ErrorStackTrace)
	w.str("QueueMessageID", x.QueueMessageID)
	w.str("WorkerID", x.WorkerID)
	w.int32p("MemoryUsageMB", x.MemoryUsageMB)
	w.int32p("CPUTimeMS", x.CPUTimeMS)
	w.raw("InputData", x.InputData)
	w.raw("OutputData", x.OutputData)
	w.raw("ExecutionContext", x.ExecutionContext)
	w.time("CreatedAt", x.CreatedAt)
	w.time("UpdatedAt", x.UpdatedAt)
	return append(w.b, '}')
}

type recordWriter struct {
	b    []byte
	more bool
}

func (w *recordWriter) key(k string) {
	if w.more {
		w.b = append(w.b, ',')
	}
	w.more = true
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *recordWriter) uuid(k string, id uuid.UUID) {
	if id == uuid.Nil {
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = event.AppendID(w.b, id)
	w.b = append(w.b, '"')
}

// str writes plain printable ASCII directly and leaves anything else
// (quotes, control characters, non-ASCII, invalid UTF-8) to encoding/json,
// so the escaping is always exactly its own.
func (w *recordWriter) str(k, s string) {
	if s == "" {
		return
	}
	w.key(k)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			w.b = append(w.b, q...)
			return
		}
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

func (w *recordWriter) time(k string, t time.Time) {
	if t.IsZero() {
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano) // what time.Time.MarshalJSON writes
	w.b = append(w.b, '"')
}

func (w *recordWriter) int32p(k string, p *int32) {
	if p == nil {
		return
	}
	w.key(k)
	w.b = strconv.AppendInt(w.b, int64(*p), 10)
}

// raw writes JSON the row already holds (handler output is checked by
// handler.SetOutput, the other fields are ours).
func (w *recordWriter) raw(k string, r json.RawMessage) {
	if len(r) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, r...)
}
