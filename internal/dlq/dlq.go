// Package dlq keeps the dead letters of a consumer group (DESIGN §2): the
// stream `{prefix}:dlq:{group}`, whose entries are the original event entry's
// fields, unchanged, plus the dlq_* fields saying why, where and when it failed.
//
// Moving an entry to the DLQ (Move) is one Lua script that XADDs the dead
// letter and XACKs the source entry, so an entry is either still pending or
// dead-lettered, never both and never neither. Redriving (Redrive) is one
// script that XADDs the original fields back to their source stream, with
// redrive_actions and redrive_count, and XDELs the dead letter.
//
// Redis Cluster: a script may touch only keys of one hash slot, and the DESIGN
// key names carry no hash tags, so a source stream and the DLQ usually live in
// different slots. When Redis answers CROSSSLOT, Move and Redrive fall back to
// two ordered commands (write the copy first, then ack or delete the original):
// a crash between them leaves a duplicate, never a loss.
package dlq

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/neo-events/neo-events/event"
)

// Reason says why an entry was dead-lettered.
type Reason string

// The reasons of DESIGN §2.
const (
	// ReasonExhausted: an action failed on its last allowed attempt.
	ReasonExhausted Reason = "exhausted"
	// ReasonInvalid: the entry could not be decoded or failed validation.
	ReasonInvalid Reason = "invalid"
	// ReasonPermanent: a handler said the failure is permanent (handler.Permanent).
	ReasonPermanent Reason = "permanent"
	// ReasonUnknownHandler: an action names a handler no worker has registered.
	ReasonUnknownHandler Reason = "unknown_handler"
)

// Reasons lists every valid Reason.
var Reasons = []Reason{ReasonExhausted, ReasonInvalid, ReasonPermanent, ReasonUnknownHandler}

// Valid reports whether r is one of Reasons.
func (r Reason) Valid() bool {
	for _, v := range Reasons {
		if r == v {
			return true
		}
	}
	return false
}

// Dead-letter field names. Every field whose name starts with FieldPrefix
// belongs to the DLQ: an original entry's own dlq_* fields (from an entry
// that was redriven and failed again) are replaced, never duplicated.
const (
	FieldPrefix       = "dlq_"
	FieldReason       = "dlq_reason"
	FieldError        = "dlq_error"
	FieldAttempts     = "dlq_attempts"
	FieldAction       = "dlq_action"
	FieldSourceStream = "dlq_source_stream"
	FieldSourceID     = "dlq_source_id"
	FieldFailedAt     = "dlq_failed_at"
)

// Fields a redriven entry carries on top of its original fields. The worker
// runs only the actions named in FieldRedriveActions (comma-separated); an
// empty value means the failure was not action-specific: run every matching
// action (completed executions are still never re-run).
const (
	FieldRedriveActions = "redrive_actions"
	FieldRedriveCount   = "redrive_count"
)

// MaxErrorLen bounds dlq_error, so one handler returning a huge error (a
// whole HTTP body, a deep stack) cannot bloat the DLQ. Longer messages are
// cut at a UTF-8 boundary and end with "…".
const MaxErrorLen = 8 << 10

// Errors callers branch on.
var (
	// ErrNotPending: Move found the source entry no longer pending for the
	// group (another consumer acked or dead-lettered it); nothing was written.
	ErrNotPending = errors.New("dlq: source entry is not pending for the group")
	// ErrNotFound: no DLQ entry has that id.
	ErrNotFound = errors.New("dlq: no such entry")
	// ErrInvalid: a bad Letter, Filter, id or argument; nothing was written.
	ErrInvalid = errors.New("dlq: invalid argument")
	// ErrEmptyFilter: Purge refuses a filter that matches everything; use PurgeAll.
	ErrEmptyFilter = errors.New("dlq: empty filter would purge everything; use PurgeAll")
	// ErrBadSource: a DLQ entry's dlq_source_stream is not an event stream
	// under the prefix, so Redrive will not write there.
	ErrBadSource = errors.New("dlq: entry has a bad source stream")
)

// Letter is what the worker knows about a failed entry.
type Letter struct {
	// Fields are the original entry's fields, as read from the stream.
	Fields map[string]string
	// Reason is required.
	Reason Reason
	// Error is the last error message (cut to MaxErrorLen).
	Error string
	// Attempts made by the failed action (0 for invalid entries).
	Attempts int
	// Action is the failed action's name, or several joined by commas;
	// empty when the failure was not action-specific (invalid entries).
	Action string
	// SourceStream and SourceID locate the original entry. Required.
	SourceStream, SourceID string
	// FailedAt defaults to now.
	FailedAt time.Time
}

var streamIDRE = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// ValidID reports whether id is a full stream entry id `<ms>-<seq>`.
func ValidID(id string) bool { return streamIDRE.MatchString(id) }

// Validate checks the fields Move needs.
func (l Letter) Validate() error {
	switch {
	case !l.Reason.Valid():
		return fmt.Errorf("%w: reason %q is not one of %v", ErrInvalid, l.Reason, Reasons)
	case l.SourceStream == "":
		return fmt.Errorf("%w: empty source stream", ErrInvalid)
	case !ValidID(l.SourceID):
		return fmt.Errorf("%w: source id %q is not <ms>-<seq>", ErrInvalid, l.SourceID)
	case l.Attempts < 0:
		return fmt.Errorf("%w: negative attempts %d", ErrInvalid, l.Attempts)
	}
	return nil
}

// Entry is one dead letter as read back from the DLQ.
type Entry struct {
	// ID is the DLQ entry's id (not the source entry's).
	ID string
	// Fields are the original entry's fields (every non-dlq_* field).
	Fields       map[string]string
	Reason       Reason
	Error        string
	Attempts     int
	Action       string
	SourceStream string
	SourceID     string
	// FailedAt is dlq_failed_at, or the DLQ id's time when that is unreadable.
	FailedAt time.Time
}

// EventType is the original entry's event_type, "" if it had none.
func (e Entry) EventType() string { return e.Fields[event.FieldEventType] }

// Actions splits Action on commas.
func (e Entry) Actions() []string { return SplitActions(e.Action) }

// Event decodes the original fields; invalid entries yield the decode error.
func (e Entry) Event() (*event.Event, error) { return event.DecodeEntry(e.Fields) }

// SplitActions splits a comma-separated list of action names (dlq_action,
// redrive_actions), dropping blanks; "" gives nil.
func SplitActions(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseEntry splits a DLQ stream entry into original fields and dlq_* fields.
// It is lenient: a hand-written entry with unreadable dlq_* values still lists.
func parseEntry(id string, values map[string]any) Entry {
	e := Entry{ID: id, Fields: make(map[string]string, len(values))}
	for k, v := range values {
		s := toString(v)
		if !strings.HasPrefix(k, FieldPrefix) {
			e.Fields[k] = s
			continue
		}
		switch k {
		case FieldReason:
			e.Reason = Reason(s)
		case FieldError:
			e.Error = s
		case FieldAttempts:
			e.Attempts, _ = strconv.Atoi(s)
		case FieldAction:
			e.Action = s
		case FieldSourceStream:
			e.SourceStream = s
		case FieldSourceID:
			e.SourceID = s
		case FieldFailedAt:
			e.FailedAt, _ = event.ParseTime(s)
		}
	}
	if e.FailedAt.IsZero() {
		e.FailedAt = idTime(id)
	}
	return e
}

func toString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	default:
		return fmt.Sprint(v)
	}
}

// idTime is the millisecond timestamp of a stream id; zero if unreadable.
func idTime(id string) time.Time {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return time.Time{}
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// IDTime is the time encoded in a stream id `<ms>-<seq>`; zero if unreadable.
func IDTime(id string) time.Time { return idTime(id) }

// FieldsFromPairs converts an entry's flat pairs (key, value, ...; as a
// worker reads them) into the string map a Letter carries. A key given
// twice keeps its last value; a trailing key without a value keeps "".
func FieldsFromPairs(kv []string) map[string]string {
	m := make(map[string]string, (len(kv)+1)/2)
	for i := 0; i < len(kv); i += 2 {
		v := ""
		if i+1 < len(kv) {
			v = kv[i+1]
		}
		m[kv[i]] = v
	}
	return m
}

// FieldsFromValues converts the map go-redis returns for an entry
// (XMessage.Values) into the string map a Letter carries.
func FieldsFromValues(values map[string]any) map[string]string {
	m := make(map[string]string, len(values))
	for k, v := range values {
		m[k] = toString(v)
	}
	return m
}
