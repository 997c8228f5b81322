package status

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
)

// newRequest validates and copies the updates, so a caller that stops
// waiting may reuse its values while the flusher still holds them. The
// request comes from a pool; Write gives it back once it has its result.
func newRequest(us []Update) (*request, error) {
	r := requests.Get().(*request)
	if len(us) <= len(r.one) {
		r.updates = r.one[:len(us)]
	} else {
		r.updates = make([]Update, len(us))
	}
	n := 0
	for i := range us {
		n += len(us[i].Executions)
	}
	// One backing array for every update's executions.
	execs := r.execs[:0]
	if cap(execs) < n {
		execs = make([]store.Execution, 0, n)
	}
	for i := range us {
		u, err := checkUpdate(us[i], &execs)
		if err != nil {
			r.execs = execs
			r.release()
			return nil, fmt.Errorf("update %d: %w", i, err)
		}
		r.updates[i] = u
	}
	r.execs = execs
	return r, nil
}

// checkUpdate refuses what could never be written, before it is queued:
// a bad update in a batch would otherwise fail it for everyone (until the
// flush isolated it). It copies the executions onto *execs.
func checkUpdate(u Update, execs *[]store.Execution) (Update, error) {
	if err := event.ValidateSchema(u.Schema); err != nil {
		return u, fmt.Errorf("%w: %w", ErrInvalidUpdate, err)
	}
	if u.Event == nil {
		return u, invalid("event is nil")
	}
	ev := u.Event
	// The defaults are tried on a copy on the stack; the event is copied
	// to the heap only when one applies, and the caller's stays as it was.
	if probe := *ev; fillDefaults(&probe) || probe.Schema == "" {
		cp := probe
		if cp.Schema == "" {
			cp.Schema = u.Schema
		}
		ev = &cp
	}
	if ev.Schema != u.Schema {
		return u, invalid("event %s belongs to %q, not %q", ev.ID, ev.Schema, u.Schema)
	}
	if ev.ID == uuid.Nil {
		return u, invalid("event has no id")
	}
	// The event's content is not validated here: it is written only when
	// its row is missing, and store.UpsertMissing validates what it
	// inserts (a bad event then fails its own Write with ErrRejected; the
	// rest of its flush is written). The worker's events were validated
	// by event.DecodeEntry a moment ago, and validating them again for
	// every status write cost about 7 % of a worker's CPU.
	u.Event = ev
	if err := checkStatus(&u.Status, ev.ID); err != nil {
		return u, err
	}
	if len(u.Executions) > 0 {
		start := len(*execs)
		*execs = append(*execs, u.Executions...)
		u.Executions = (*execs)[start:len(*execs):len(*execs)]
	} else {
		u.Executions = nil
	}
	if err := checkExecutions(u, ev.ID); err != nil {
		return u, err
	}
	if len(u.Stats) > 0 {
		u.Stats = append([]store.ActionStats(nil), u.Stats...)
	} else {
		u.Stats = nil
	}
	for _, s := range u.Stats {
		if s.ActionID == uuid.Nil || s.Total < 0 || s.Successful < 0 || s.Failed < 0 ||
			s.SumDurationMS < 0 || s.Successful+s.Failed > s.Total {
			return u, invalid("event %s: bad stats for action %s", ev.ID, s.ActionID)
		}
	}
	return u, nil
}

func checkStatus(s *store.StatusUpdate, id uuid.UUID) error {
	if s.Status == "" {
		if s.ID != uuid.Nil && s.ID != id {
			return invalid("status is for %s, event is %s", s.ID, id)
		}
		if !statusIsZero(*s) {
			return invalid("event %s: status fields set without a status", id)
		}
		return nil
	}
	if s.ID == uuid.Nil {
		s.ID = id
	}
	switch {
	case s.ID != id:
		return invalid("status is for %s, event is %s", s.ID, id)
	case !s.Status.Valid():
		return invalid("event %s: unknown status %q", id, truncate(string(s.Status)))
	case s.ProcessingDurationMS != nil && *s.ProcessingDurationMS < 0:
		return invalid("event %s: negative processing_duration_ms", id)
	case s.RetryCount < 0 || s.RetryCount > 1<<30:
		return invalid("event %s: retry_count %d out of range", id, s.RetryCount)
	case !event.StorableText(s.ErrorMessage):
		return invalid("event %s: error_message must be UTF-8 without NUL bytes", id)
	case !event.StorableText(s.MessageID) || utf8.RuneCountInString(s.MessageID) > event.MaxMessageIDLen:
		return invalid("event %s: message_id must be UTF-8 text of at most %d characters", id, event.MaxMessageIDLen)
	case s.ErrorDetails != nil && !jsonObject(s.ErrorDetails):
		return invalid("event %s: error_details must be a JSON object jsonb can store", id)
	}
	return nil
}

func statusIsZero(s store.StatusUpdate) bool {
	return s.ProcessingStartedAt.IsZero() && s.ProcessingCompletedAt.IsZero() &&
		s.ProcessingDurationMS == nil && s.RetryCount == 0 && s.ErrorMessage == "" &&
		s.ErrorDetails == nil && s.MessageID == ""
}

func checkExecutions(u Update, id uuid.UUID) error {
	for i := range u.Executions {
		x := &u.Executions[i]
		if x.EventID != id {
			return invalid("execution %s is for event %s, not %s", x.ID, x.EventID, id)
		}
		if err := store.CheckExecution(x); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidUpdate, err)
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidUpdate, fmt.Sprintf(format, args...))
}

// jsonObject reports whether b is a JSON object jsonb accepts.
func jsonObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil && event.StorableJSON(b)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
