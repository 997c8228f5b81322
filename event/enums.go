package event

// Status is the platform enum `platform_common.event_status`.
type Status string

// The event statuses.
const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusRetrying   Status = "retrying"
	StatusCancelled  Status = "cancelled"
	StatusPaused     Status = "paused"
	StatusBlocked    Status = "blocked"
)

// Statuses lists every status in the enum's declared order.
var Statuses = []Status{StatusPending, StatusProcessing, StatusCompleted, StatusFailed,
	StatusRetrying, StatusCancelled, StatusPaused, StatusBlocked}

// transitions lists the legal moves of an event's status. Re-processing a
// failed event (a redrive) goes back through retrying.
var transitions = map[Status][]Status{
	// A worker may write an event's outcome without a separate processing
	// write first, so pending moves straight to any outcome.
	StatusPending:    {StatusProcessing, StatusCompleted, StatusFailed, StatusRetrying, StatusCancelled, StatusPaused, StatusBlocked},
	StatusProcessing: {StatusCompleted, StatusFailed, StatusRetrying, StatusCancelled, StatusPending},
	StatusRetrying:   {StatusProcessing, StatusCompleted, StatusFailed, StatusCancelled, StatusPaused},
	// A redrive re-runs the failed actions and may complete the event.
	StatusFailed:    {StatusRetrying, StatusProcessing, StatusPending, StatusCompleted},
	StatusPaused:    {StatusPending, StatusCancelled},
	StatusBlocked:   {StatusPending, StatusCancelled},
	StatusCompleted: nil,
	StatusCancelled: nil,
}

// Valid reports whether s is a member of the enum.
func (s Status) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Terminal reports whether no transition leaves s.
func (s Status) Terminal() bool { return s.Valid() && len(transitions[s]) == 0 }

// CanTransition reports whether an event may move from s to next. Staying in
// the same status is always allowed (status writes are idempotent).
func (s Status) CanTransition(next Status) bool {
	if s == next {
		return s.Valid()
	}
	for _, t := range transitions[s] {
		if t == next {
			return true
		}
	}
	return false
}

// Priority is the platform enum `platform_common.event_priority`.
type Priority string

// The event priorities, lowest first.
const (
	PriorityLow      Priority = "low"
	PriorityNormal   Priority = "normal"
	PriorityHigh     Priority = "high"
	PriorityVeryHigh Priority = "very_high"
	PriorityCritical Priority = "critical"
)

// Priorities lists every priority, lowest first.
var Priorities = []Priority{PriorityLow, PriorityNormal, PriorityHigh, PriorityVeryHigh, PriorityCritical}

// Rank orders priorities: low is 0, critical is 4; an unknown priority is -1.
func (p Priority) Rank() int {
	for i, q := range Priorities {
		if p == q {
			return i
		}
	}
	return -1
}

// Valid reports whether p is a member of the enum.
func (p Priority) Valid() bool { return p.Rank() >= 0 }
