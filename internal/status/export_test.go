package status

import (
	"context"
	"time"
)

// WriteStatsNow writes the buffered action statistics without waiting for
// the ticker.
func (w *Writer) WriteStatsNow(ctx context.Context) { w.writeStats(ctx) }

// Pipelined is how many flushes committed on the pipelined path.
func (w *Writer) Pipelined() int64 { return w.pipelined.Load() }

// Stepwise reports whether flushes currently skip the pipelined path.
func (w *Writer) Stepwise() bool { return time.Now().UnixNano() < w.stepwiseUntil.Load() }

// EndStepwise makes the next flush try the pipelined path again.
func (w *Writer) EndStepwise() { w.stepwiseUntil.Store(0) }
