package status

import "context"

// WriteStatsNow writes the buffered action statistics without waiting for
// the ticker.
func (w *Writer) WriteStatsNow(ctx context.Context) { w.writeStats(ctx) }
