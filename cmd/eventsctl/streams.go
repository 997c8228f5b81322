package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/neo-events/neo-events/internal/dlq"
	"github.com/neo-events/neo-events/internal/streaminfo"
	"github.com/neo-events/neo-events/internal/streams"
)

func init() {
	register("streams", verb{
		Usage:   "streams [--group G] [--json]",
		Summary: "show every registered stream: length, and per consumer group consumers, pending, lag, oldest pending; plus DLQ lengths",
		Flags: func(fs *pflag.FlagSet) {
			fs.String("group", "", "show only this consumer group")
			fs.Bool("json", false, "print JSON instead of a table")
		},
		Run: runStreams,
	})
}

// streamsReport is the JSON form of `eventsctl streams`.
type streamsReport struct {
	Prefix  string                  `json:"prefix"`
	Streams []streaminfo.StreamInfo `json:"streams"`
	// DLQ and Backlog are per group: dead letters, and lag + pending.
	DLQ     map[string]int64 `json:"dlq"`
	Backlog map[string]int64 `json:"backlog"`
}

func runStreams(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return usageErrorf("streams takes no arguments, got %q", args)
	}
	group, _ := a.Flags.GetString("group")
	asJSON, _ := a.Flags.GetBool("json")
	if strings.ContainsAny(group, ": \t\n") {
		return usageErrorf("--group %q must not contain ':' or spaces", group)
	}
	rdb, err := a.Redis(ctx)
	if err != nil {
		return err
	}
	rep, err := buildStreamsReport(ctx, rdb, a.Config.Streams.Prefix, group, a.Config.Worker.Group)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.Stdout, rep)
	}
	writeStreamsReport(a.Stdout, rep, group)
	return nil
}

// buildStreamsReport inspects the streams, keeps only group when given, and
// reads the DLQ length of every group shown (and of the configured group,
// whose DLQ matters even when its streams are gone).
func buildStreamsReport(ctx context.Context, rdb redis.UniversalClient, prefix, group, configured string) (streamsReport, error) {
	infos, err := streaminfo.Inspect(ctx, rdb, prefix)
	if err != nil {
		return streamsReport{}, err
	}
	if group != "" {
		infos = onlyGroup(infos, group)
	}
	groups := streaminfo.Groups(infos)
	switch {
	case group != "":
		groups = []string{group}
	case !contains(groups, configured):
		groups = append(groups, configured)
	}
	rep := streamsReport{Prefix: prefix, Streams: infos, DLQ: map[string]int64{}, Backlog: map[string]int64{}}
	for _, g := range groups {
		n, err := dlq.Len(ctx, rdb, prefix, g)
		if err != nil {
			return streamsReport{}, err
		}
		rep.DLQ[g] = n
		rep.Backlog[g] = streaminfo.GroupBacklog(infos, g)
	}
	return rep, nil
}

func onlyGroup(infos []streaminfo.StreamInfo, group string) []streaminfo.StreamInfo {
	out := make([]streaminfo.StreamInfo, len(infos))
	for i, s := range infos {
		out[i] = streaminfo.StreamInfo{Stream: s.Stream, Length: s.Length, Groups: []streaminfo.GroupInfo{}}
		for _, g := range s.Groups {
			if g.Name == group {
				out[i].Groups = append(out[i].Groups, g)
			}
		}
	}
	return out
}

func writeStreamsReport(w io.Writer, rep streamsReport, group string) {
	if len(rep.Streams) == 0 {
		fmt.Fprintf(w, "No streams registered in %s. Nothing has been published under prefix %q yet, or streams.prefix is wrong.\n",
			streams.Registry(rep.Prefix), rep.Prefix)
	} else {
		writeStreamTable(w, rep.Streams)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tBACKLOG\tDLQ")
	for _, g := range sortedKeys(rep.DLQ) {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", g, rep.Backlog[g], rep.DLQ[g])
	}
	_ = tw.Flush()
	for _, g := range sortedKeys(rep.DLQ) {
		if rep.DLQ[g] > 0 {
			fmt.Fprintf(w, "Group %s has %d dead letter(s): eventsctl dlq list --group %s\n", g, rep.DLQ[g], g)
		}
	}
	if group != "" && !anyGroup(rep.Streams) && len(rep.Streams) > 0 {
		fmt.Fprintf(w, "No stream has a group %q: no worker of that group has started, or the name is wrong.\n", group)
	}
}

func writeStreamTable(w io.Writer, infos []streaminfo.StreamInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tLENGTH\tGROUP\tCONSUMERS\tPENDING\tLAG\tOLDEST-PENDING")
	for _, s := range infos {
		name := printable(s.Stream, 100)
		if len(s.Groups) == 0 {
			fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\t-\t-\n", name, s.Length)
		}
		for _, g := range s.Groups {
			lag := fmt.Sprint(g.Lag)
			if !g.LagExact {
				lag = "~" + lag
			}
			oldest := "-"
			if g.OldestPendingID != "" {
				oldest = humanAge(g.OldestPendingAge)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\n", name, s.Length, printable(g.Name, 60), g.Consumers, g.Pending, lag, oldest)
		}
	}
	_ = tw.Flush()
}

func anyGroup(infos []streaminfo.StreamInfo) bool {
	for _, s := range infos {
		if len(s.Groups) > 0 {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
