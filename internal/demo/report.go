package demo

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/streaminfo"
	"github.com/neo-events/neo-events/internal/streams"
)

// Expectation is what the demo actions should produce for a set of events.
type Expectation struct {
	// Failed: events broken-export matches (it always fails).
	Failed int
	// Webhook: distinct events notify-webhook delivers.
	Webhook int
	// Retries: FlakyFailures per event plus broken-export's two retries
	// per orders.* event, absent redeliveries.
	Retries int
}

func expect(evs []*event.Event) Expectation {
	var x Expectation
	for _, e := range evs {
		x.Retries += FlakyFailures
		if event.MatchPattern("orders.*", e.EventType) {
			x.Failed++
			x.Retries += 2
		}
		if event.MatchPattern("users.*", e.EventType) {
			x.Webhook++
		}
	}
	return x
}

// Summary is the outcome of a Run.
type Summary struct {
	Prefix, Group string
	// Published events, of which Relayed were left to the outbox relay.
	Published, Relayed int
	Expect             Expectation
	// PublishTime is how long publishing took; WaitTime, until all were
	// final (or the timeout).
	PublishTime, WaitTime time.Duration
	// Progress is the final count of the published events' statuses.
	Progress Progress
	// Unfinished are examples of events that are not final.
	Unfinished []string
	// Unhealthy are the actions whose circuit breaker is open, when
	// events are not final ("<schema>/<name>").
	Unhealthy []string
	Schemas   []SchemaStats
	Streams   []streaminfo.StreamInfo
	// Backlog is the group's lag plus pending over every stream.
	Backlog  int64
	DLQTotal int
	DLQ      []DLQCount
	Webhook  ReceiverStats
}

// Lost counts published events that are not final.
func (s *Summary) Lost() int { return s.Progress.Published - s.Progress.Final() }

// Err says what went wrong, wrapping ErrLost and/or ErrInvalidSignature;
// nil when nothing did.
func (s *Summary) Err() error {
	var errs []error
	if n := s.Lost(); n > 0 {
		errs = append(errs, fmt.Errorf("%w: %d of %d", ErrLost, n, s.Progress.Published))
	}
	if s.Webhook.Invalid > 0 {
		errs = append(errs, fmt.Errorf("%w: %d of %d requests (last: %s)", ErrInvalidSignature,
			s.Webhook.Invalid, s.Webhook.Total(), s.Webhook.LastError))
	}
	return errors.Join(errs...)
}

// Write prints the summary for an operator.
func (s *Summary) Write(w io.Writer) {
	fmt.Fprintf(w, "\n%d events published in %s", s.Published, s.PublishTime.Round(time.Millisecond))
	if s.Lost() == 0 {
		fmt.Fprintf(w, "; all final in PostgreSQL after %s\n", s.WaitTime.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(w, "; %d NOT final after %s\n", s.Lost(), s.WaitTime.Round(100*time.Millisecond))
	}
	s.writeWhere(w)
	s.writeOutcome(w)
	s.writeHints(w)
}

func (s *Summary) writeWhere(w io.Writer) {
	fmt.Fprintf(w, "\nWhat landed where: PostgreSQL rows per schema\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  schema\tevents\tcompleted\tfailed\texecutions\tretries\t")
	for _, st := range s.Schemas {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t\n", st.Schema, st.Rows, st.Completed, st.Failed, st.Executions, st.Retries)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nWhat landed where: stream entries (per scope and category; group %s)\n", s.Group)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  streams\tpartitions\tentries\tlag\tpending\t")
	for _, r := range streamRows(s.Streams, s.Group) {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t\n", r.name, r.partitions, r.entries, r.lag, r.pending)
	}
	_ = tw.Flush()
}

type streamRow struct {
	name                  string
	partitions            int
	entries, lag, pending int64
}

// streamRows folds the partitions of each `{prefix}:{scope}:{category}`.
func streamRows(infos []streaminfo.StreamInfo, group string) []streamRow {
	by := map[string]*streamRow{}
	for _, si := range infos {
		name := si.Stream
		if p, err := streams.Parse(si.Stream); err == nil {
			name = fmt.Sprintf("%s:%s:%s:*", p.Prefix, p.Scope, p.Category)
		}
		r := by[name]
		if r == nil {
			r = &streamRow{name: name}
			by[name] = r
		}
		r.partitions++
		r.entries += si.Length
		for _, g := range si.Groups {
			if g.Name == group {
				r.lag += g.Lag
				r.pending += g.Pending
			}
		}
	}
	out := make([]streamRow, 0, len(by))
	for _, k := range sortedKeys(by) {
		out = append(out, *by[k])
	}
	return out
}

func (s *Summary) writeOutcome(w io.Writer) {
	var completed, failed, retries int64
	for _, st := range s.Schemas {
		completed, failed, retries = completed+st.Completed, failed+st.Failed, retries+st.Retries
	}
	fmt.Fprintf(w, "\nOutcome\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  processed (completed)\t%d\t\n", completed)
	fmt.Fprintf(tw, "  failed\t%d\texpected %d: the orders.* events, which broken-export always fails\n", failed, s.Expect.Failed)
	fmt.Fprintf(tw, "  retried (executions with is_retry)\t%d\texpected about %d: flaky-sync fails twice per event\n", retries, s.Expect.Retries)
	fmt.Fprintf(tw, "  dead-lettered (%s)\t%d\t\n", streams.DLQ(s.Prefix, s.Group), s.DLQTotal)
	for _, d := range s.DLQ {
		action := d.Action
		if action == "" {
			action = "(no action)"
		}
		fmt.Fprintf(tw, "    reason %s, action %s\t%d\t\n", d.Reason, action, d.N)
	}
	fmt.Fprintf(tw, "  group %s backlog (lag + pending)\t%d\t\n", s.Group, s.Backlog)
	fmt.Fprintf(tw, "  webhook calls (valid signatures / total)\t%d / %d\t%d distinct events, expected %d (users.*)\n",
		s.Webhook.Valid, s.Webhook.Total(), s.Webhook.Distinct, s.Expect.Webhook)
	if s.Relayed > 0 {
		fmt.Fprintf(tw, "  left to the outbox relay\t%d\t\n", s.Relayed)
	}
	_ = tw.Flush()
	if len(s.Unfinished) > 0 {
		fmt.Fprintf(w, "\nNot final, for example:\n  %s\n", strings.Join(s.Unfinished, "\n  "))
	}
	if len(s.Unhealthy) > 0 {
		fmt.Fprintf(w, "\nActions with an open circuit breaker (calls deferred by the cooldown; see the worker logs):\n  %s\n",
			strings.Join(s.Unhealthy, "\n  "))
	}
}

func (s *Summary) writeHints(w io.Writer) {
	env := ""
	if s.Prefix != "events" {
		env = "NEO_EVENTS_STREAMS_PREFIX=" + s.Prefix + " "
	}
	fmt.Fprintf(w, "\nLook closer (from the repository, after eval \"$(scripts/devstack.sh)\"):\n")
	fmt.Fprintf(w, "  %sbin/eventsctl dlq list --group %s      # the dead letters, with their errors\n", env, s.Group)
	fmt.Fprintf(w, "  %sbin/eventsctl streams                  # length, lag and pending per stream and group\n", env)
}
