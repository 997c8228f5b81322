package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/dlq"
	"github.com/neo-events/neo-events/internal/streams"
)

// defaultListLimit is how many entries `dlq list` shows unless told.
const defaultListLimit = 50

func init() {
	register("dlq", verb{
		Usage: "dlq list    [--group G] [filters] [--limit 50] [--json]\n" +
			"dlq show    <id> [--group G] [--json]\n" +
			"dlq redrive [<id>] [filters] [--rate 50] [--limit N] [--dry-run] [--json]\n" +
			"dlq purge   [<id>] (--all | filters) [--yes] [--json]",
		Summary: "list, show, redrive or purge the dead letters of a consumer group " +
			"(filters: --event-type, --action, --reason, --older-than, --newer-than, --id)",
		Flags: dlqFlags,
		Run:   runDLQ,
	})
}

func dlqFlags(fs *pflag.FlagSet) {
	fs.String("group", "", "consumer group whose DLQ to use (default: worker.group)")
	fs.Bool("json", false, "print JSON instead of a table")
	fs.String("event-type", "", "filter: event pattern such as users.*, *.created, users.created")
	fs.String("action", "", "filter: name of the action that failed")
	fs.String("reason", "", "filter: exhausted, invalid, permanent or unknown_handler")
	fs.String("id", "", "filter: one dead letter by its DLQ id")
	fs.Duration("older-than", 0, "filter: dead-lettered more than this long ago (e.g. 1h)")
	fs.Duration("newer-than", 0, "filter: dead-lettered less than this long ago (e.g. 30m)")
	fs.Int("limit", 0, "at most this many entries (list defaults to 50; 0 means all)")
	fs.Float64("rate", 50, "redrive: entries per second (0: unlimited)")
	fs.Bool("dry-run", false, "redrive: show what would be redriven, change nothing")
	fs.Bool("all", false, "purge: delete every dead letter of the group")
	fs.Bool("yes", false, "purge: really delete")
}

// dlqSubFlags lists the flags each subcommand accepts, so that a flag given
// to the wrong one (purge --dry-run) is refused instead of ignored.
var dlqSubFlags = map[string][]string{
	"list":    {"group", "json", "event-type", "action", "reason", "id", "older-than", "newer-than", "limit"},
	"show":    {"group", "json"},
	"redrive": {"group", "json", "event-type", "action", "reason", "id", "older-than", "newer-than", "limit", "rate", "dry-run"},
	"purge":   {"group", "json", "event-type", "action", "reason", "id", "older-than", "newer-than", "limit", "all", "yes"},
}

// dlqTarget is what a dlq subcommand works on.
type dlqTarget struct {
	rdb    redis.UniversalClient
	prefix string
	stdout io.Writer
}

// dlqOpts are the dlq flags, read once.
type dlqOpts struct {
	group, eventType, action, reason, id string
	olderThan, newerThan                 time.Duration
	limit                                int
	rate                                 float64
	json, dryRun, all, yes               bool
}

func runDLQ(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usageErrorf("dlq needs a subcommand: list, show, redrive or purge")
	}
	sub, pos := args[0], args[1:]
	run, ok := map[string]func(context.Context, dlqTarget, dlqOpts, []string) error{
		"list": dlqList, "show": dlqShow, "redrive": dlqRedrive, "purge": dlqPurge,
	}[sub]
	if !ok {
		return usageErrorf("unknown dlq subcommand %q: want list, show, redrive or purge", sub)
	}
	o, pos, err := readDLQOpts(a, sub, pos)
	if err != nil {
		return err
	}
	rdb, err := a.Redis(ctx)
	if err != nil {
		return err
	}
	return run(ctx, dlqTarget{rdb: rdb, prefix: a.Config.Streams.Prefix, stdout: a.Stdout}, o, pos)
}

func readDLQOpts(a *app, sub string, pos []string) (dlqOpts, []string, error) {
	fs := a.Flags
	var bad []string
	fs.Visit(func(f *pflag.Flag) {
		if isDLQFlag(f.Name) && !contains(dlqSubFlags[sub], f.Name) {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return dlqOpts{}, nil, usageErrorf("dlq %s does not take %s", sub, strings.Join(bad, ", "))
	}
	var o dlqOpts
	o.group, _ = fs.GetString("group")
	o.json, _ = fs.GetBool("json")
	o.eventType, _ = fs.GetString("event-type")
	o.action, _ = fs.GetString("action")
	o.reason, _ = fs.GetString("reason")
	o.id, _ = fs.GetString("id")
	o.olderThan, _ = fs.GetDuration("older-than")
	o.newerThan, _ = fs.GetDuration("newer-than")
	o.limit, _ = fs.GetInt("limit")
	o.rate, _ = fs.GetFloat64("rate")
	o.dryRun, _ = fs.GetBool("dry-run")
	o.all, _ = fs.GetBool("all")
	o.yes, _ = fs.GetBool("yes")
	if o.group == "" {
		o.group = a.Config.Worker.Group
	}
	if sub == "list" && !fs.Changed("limit") {
		o.limit = defaultListLimit
	}
	if sub != "show" && len(pos) == 1 && o.id == "" {
		o.id, pos = pos[0], nil
	}
	if err := checkDLQOpts(sub, o, pos); err != nil {
		return o, nil, usageErrorf("dlq %s: %v", sub, err)
	}
	return o, pos, nil
}

func isDLQFlag(name string) bool {
	return contains(dlqSubFlags["redrive"], name) || contains(dlqSubFlags["purge"], name)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func checkDLQOpts(sub string, o dlqOpts, pos []string) error {
	switch {
	case sub == "show" && len(pos) != 1:
		return errors.New("want exactly one DLQ id, as `eventsctl dlq list` prints it")
	case sub != "show" && len(pos) > 0:
		return fmt.Errorf("unexpected arguments %q", pos)
	case strings.ContainsAny(o.group, ": \t\n"):
		return fmt.Errorf("--group %q must not contain ':' or spaces", o.group)
	case o.limit < 0:
		return errors.New("--limit must be >= 0")
	case o.rate < 0 || math.IsNaN(o.rate):
		return errors.New("--rate must be >= 0 (0: unlimited)")
	case sub == "purge" && o.all && !o.filter().IsZero():
		return errors.New("--all deletes everything: use it without filters, or drop it")
	case sub == "purge" && !o.all && o.filter().IsZero():
		return errors.New("refusing to purge without a filter: give filters, or --all to delete every dead letter")
	}
	return o.filter().Validate()
}

func (o dlqOpts) filter() dlq.Filter {
	return dlq.Filter{ID: o.id, EventType: o.eventType, Action: o.action, Reason: dlq.Reason(o.reason),
		OlderThan: o.olderThan, NewerThan: o.newerThan}
}

func dlqList(ctx context.Context, t dlqTarget, o dlqOpts, _ []string) error {
	// One more than asked tells whether the limit cut the list.
	entries, err := dlq.List(ctx, t.rdb, t.prefix, o.group, o.filter(), limitPlusOne(o.limit))
	if err != nil {
		return err
	}
	more := o.limit > 0 && len(entries) > o.limit
	if more {
		entries = entries[:o.limit]
	}
	if o.json {
		return writeJSON(t.stdout, toJSONEntries(entries))
	}
	key := streams.DLQ(t.prefix, o.group)
	if len(entries) == 0 {
		fmt.Fprintf(t.stdout, "No dead letters match in %s.\n", key)
		return nil
	}
	writeEntryTable(t.stdout, entries, time.Now())
	fmt.Fprintf(t.stdout, "\n%d dead letter(s) shown from %s, oldest first.\n", len(entries), key)
	if more {
		fmt.Fprintf(t.stdout, "More match: raise --limit (0 for all) or narrow the filters.\n")
	}
	fmt.Fprintf(t.stdout, "Next: `eventsctl dlq show <id>` for details; once the cause is fixed, "+
		"`eventsctl dlq redrive <id>` or redrive with the same filters (try --dry-run first).\n")
	return nil
}

func limitPlusOne(limit int) int {
	if limit <= 0 {
		return 0
	}
	return limit + 1
}

func writeEntryTable(w io.Writer, entries []dlq.Entry, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFAILED\tREASON\tEVENT TYPE\tACTION\tATTEMPTS\tERROR")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s ago\t%s\t%s\t%s\t%d\t%s\n", e.ID, humanAge(now.Sub(e.FailedAt)), orDash(printable(string(e.Reason), 20)),
			orDash(printable(e.EventType(), 40)), orDash(printable(e.Action, 30)), e.Attempts, orDash(printable(e.Error, 60)))
	}
	_ = tw.Flush()
}

func dlqShow(ctx context.Context, t dlqTarget, o dlqOpts, pos []string) error {
	e, err := dlq.Get(ctx, t.rdb, t.prefix, o.group, pos[0])
	if errors.Is(err, dlq.ErrNotFound) {
		return fmt.Errorf("no dead letter %s in %s (redriven or purged already?); list them: eventsctl dlq list --group %s",
			pos[0], streams.DLQ(t.prefix, o.group), o.group)
	}
	if errors.Is(err, dlq.ErrInvalid) {
		return usageErrorf("%v", err)
	}
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(t.stdout, toJSONEntry(e))
	}
	writeEntryDetail(t.stdout, e, time.Now())
	if _, err := e.Event(); err != nil {
		fmt.Fprintf(t.stdout, "\nNext: this entry is not a valid event, so a redrive would fail again. Fix its producer (%s), "+
			"then drop it: `eventsctl dlq purge %s --group %s --yes`.\n", orDash(printable(e.Fields["source_service"], 60)), e.ID, o.group)
		return nil
	}
	fmt.Fprintf(t.stdout, "\nNext: fix the cause, then `eventsctl dlq redrive %s --group %s`; or drop it: `eventsctl dlq purge %s --group %s --yes`.\n",
		e.ID, o.group, e.ID, o.group)
	return nil
}

func writeEntryDetail(w io.Writer, e dlq.Entry, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("DLQ id:", e.ID)
	row("Failed:", fmt.Sprintf("%s (%s ago)", event.FormatTime(e.FailedAt), humanAge(now.Sub(e.FailedAt))))
	row("Reason:", orDash(printable(string(e.Reason), 40)))
	row("Action:", orDash(printable(e.Action, 200)))
	row("Attempts:", fmt.Sprint(e.Attempts))
	row("Source:", printable(e.SourceStream+" "+e.SourceID, 200))
	if _, err := e.Event(); err != nil {
		row("Decodes:", printable("no: "+err.Error(), 200))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "Error:\n%s\n", printableLines(orDash(e.Error), dlq.MaxErrorLen, "  "))
	fmt.Fprintln(w, "Original entry:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, k := range orderedKeys(e.Fields) {
		fmt.Fprintf(tw, "  %s\t%s\n", printable(k, 60), printable(e.Fields[k], 2000))
	}
	_ = tw.Flush()
}

// orderedKeys lists the event fields in entry order, then the others sorted.
func orderedKeys(m map[string]string) []string {
	var keys []string
	known := map[string]bool{}
	for _, k := range event.EntryFields {
		known[k] = true
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	var extra []string
	for k := range m {
		if !known[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	return append(keys, extra...)
}

func dlqRedrive(ctx context.Context, t dlqTarget, o dlqOpts, _ []string) error {
	if o.dryRun {
		return dlqRedriveDryRun(ctx, t, o)
	}
	key := streams.DLQ(t.prefix, o.group)
	res, err := dlq.RedriveEntries(ctx, t.rdb, t.prefix, o.group, o.filter(), o.rate, o.limit)
	if err != nil {
		return fmt.Errorf("redrove %d dead letter(s) from %s, then stopped (re-run the same command to continue): %w",
			res.Redriven, key, err)
	}
	if o.json {
		if err := writeJSON(t.stdout, map[string]any{"redriven": res.Redriven, "skipped": nonNil(res.Skipped)}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(t.stdout, "Redrove %d dead letter(s) from %s to their source streams.\n", res.Redriven, key)
		if res.Redriven > 0 {
			fmt.Fprintf(t.stdout, "Workers of group %s run only the action(s) that failed. Watch them: eventsctl streams --group %s\n",
				o.group, o.group)
		}
	}
	if len(res.Skipped) > 0 {
		return fmt.Errorf("left %d dead letter(s) in %s: their source stream is not an event stream under %q "+
			"(first: %s); inspect with `eventsctl dlq show <id>`, purge them once understood", len(res.Skipped), key, t.prefix, res.Skipped[0])
	}
	return nil
}

func dlqRedriveDryRun(ctx context.Context, t dlqTarget, o dlqOpts) error {
	entries, err := dlq.List(ctx, t.rdb, t.prefix, o.group, o.filter(), o.limit)
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(t.stdout, map[string]any{"dry_run": true, "would_redrive": len(entries), "entries": toJSONEntries(entries)})
	}
	if len(entries) == 0 {
		fmt.Fprintf(t.stdout, "Dry run: no dead letters match in %s; nothing would be redriven.\n", streams.DLQ(t.prefix, o.group))
		return nil
	}
	writeEntryTable(t.stdout, entries, time.Now())
	fmt.Fprintf(t.stdout, "\nDry run: %d dead letter(s) would go back to their source streams. Nothing changed.\n"+
		"Next: run the same command without --dry-run.\n", len(entries))
	return nil
}

// errPurgeRefused: purge without --yes only counts.
var errPurgeRefused = errors.New("nothing deleted: re-run with --yes to delete")

func dlqPurge(ctx context.Context, t dlqTarget, o dlqOpts, _ []string) error {
	key := streams.DLQ(t.prefix, o.group)
	if !o.yes {
		n, err := countMatching(ctx, t, o)
		if err != nil {
			return err
		}
		if o.json {
			_ = writeJSON(t.stdout, map[string]any{"purged": 0, "would_purge": n})
		} else {
			fmt.Fprintf(t.stdout, "Would delete %d dead letter(s) from %s. They cannot be recovered afterwards.\n", n, key)
		}
		return errPurgeRefused
	}
	var n int
	var err error
	if o.all {
		n, err = dlq.PurgeAll(ctx, t.rdb, t.prefix, o.group)
	} else {
		n, err = purgeLimited(ctx, t, o)
	}
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(t.stdout, map[string]any{"purged": n})
	}
	fmt.Fprintf(t.stdout, "Deleted %d dead letter(s) from %s.\n", n, key)
	return nil
}

func countMatching(ctx context.Context, t dlqTarget, o dlqOpts) (int, error) {
	if o.all {
		n, err := dlq.Len(ctx, t.rdb, t.prefix, o.group)
		return int(n), err
	}
	entries, err := dlq.List(ctx, t.rdb, t.prefix, o.group, o.filter(), o.limit)
	return len(entries), err
}

// purgeLimited honours --limit, which dlq.Purge has no notion of.
func purgeLimited(ctx context.Context, t dlqTarget, o dlqOpts) (int, error) {
	if o.limit <= 0 {
		return dlq.Purge(ctx, t.rdb, t.prefix, o.group, o.filter())
	}
	entries, err := dlq.List(ctx, t.rdb, t.prefix, o.group, o.filter(), o.limit)
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	n, err := t.rdb.XDel(ctx, streams.DLQ(t.prefix, o.group), ids...).Result()
	if err != nil {
		return 0, fmt.Errorf("delete dead letters: %w", err)
	}
	return int(n), nil
}

type jsonEntry struct {
	ID           string            `json:"id"`
	FailedAt     string            `json:"failed_at"`
	Reason       dlq.Reason        `json:"reason"`
	EventType    string            `json:"event_type"`
	Action       string            `json:"action"`
	Attempts     int               `json:"attempts"`
	Error        string            `json:"error"`
	SourceStream string            `json:"source_stream"`
	SourceID     string            `json:"source_id"`
	Fields       map[string]string `json:"fields"`
}

func toJSONEntry(e dlq.Entry) jsonEntry {
	return jsonEntry{ID: e.ID, FailedAt: event.FormatTime(e.FailedAt), Reason: e.Reason, EventType: e.EventType(),
		Action: e.Action, Attempts: e.Attempts, Error: e.Error, SourceStream: e.SourceStream, SourceID: e.SourceID, Fields: e.Fields}
}

func toJSONEntries(entries []dlq.Entry) []jsonEntry {
	out := make([]jsonEntry, len(entries))
	for i, e := range entries {
		out[i] = toJSONEntry(e)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// humanAge prints a duration the way an operator reads it: 45s, 12m, 3h12m, 2d4h.
func humanAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable keeps hostile entry contents (escape sequences, newlines, tabs
// that would break the table, invalid UTF-8) off the operator's terminal as
// \xNN, and cuts long values to about max bytes.
func printable(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if b.Len() >= max {
			b.WriteString("…")
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// printableLines is printable for multi-line text, each line indented.
func printableLines(s string, max int, indent string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = indent + printable(l, max)
	}
	return strings.Join(lines, "\n")
}
