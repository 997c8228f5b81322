package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// warmup is when the RSS baseline for leak checks is taken.
const warmup = 30 * time.Second

// counters are read once a second for the progress line.
type counters struct {
	published func() int64
	processed func() int64 // nil when no workers run
	errors    func() int64
	backlog   func(context.Context) (int64, error)
	workerRSS func() (total, anon float64) // nil unless the workers are processes
}

// progress prints one line a second to w until ctx ends, and tracks the
// peak RSS meanwhile: the bench's own in rss, the worker processes' in
// wrss and its anonymous part in wanon (both nil when the workers run
// in-process).
func progress(ctx context.Context, w io.Writer, c counters, rss, wrss, wanon *RSS) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	var lastPub, lastProc int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			rss.sample(rssMiB(), now.Sub(start))
			var workers, anon float64
			if wrss != nil {
				workers, anon = c.workerRSS()
				wrss.sample(workers, now.Sub(start))
				wanon.sample(anon, now.Sub(start))
			}
			if w == nil {
				continue
			}
			pub := c.published()
			line := fmt.Sprintf("[%5.1fs] published %d (%d/s)", now.Sub(start).Seconds(), pub, pub-lastPub)
			lastPub = pub
			if c.processed != nil {
				proc := c.processed()
				line += fmt.Sprintf("  processed %d (%d/s)", proc, proc-lastProc)
				lastProc = proc
			}
			if c.backlog != nil {
				if b, err := c.backlog(ctx); err == nil {
					line += fmt.Sprintf("  backlog %d", b)
				}
			}
			line += fmt.Sprintf("  errors %d  rss %.0fMiB", c.errors(), rssMiB())
			if wrss != nil {
				line += fmt.Sprintf("  workers' rss %.0fMiB (anon %.0f)", workers, anon)
			}
			fmt.Fprintln(w, line)
		}
	}
}
