package bench

import (
	"math"
	"sort"

	dto "github.com/prometheus/client_model/go"

	"github.com/neo-events/neo-events/internal/metrics"
)

// FlushStats summarizes the workers' status write transactions
// (worker_status_flush_duration_seconds): how many, how long, and how many
// events each carried on average. Every event waits for its flush before
// its in-flight slot frees, so slow flushes are where PostgreSQL shows up
// in the end-to-end latency.
type FlushStats struct {
	Flushes int64   `json:"flushes"`
	MeanMS  float64 `json:"mean_ms"`
	// P50MS and P99MS are estimated from the histogram's buckets (linear
	// within a bucket, as PromQL's histogram_quantile does).
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	// EventsPerFlush is events processed divided by flushes.
	EventsPerFlush float64 `json:"events_per_flush"`
}

// flushHist accumulates the flush-duration histograms of several workers.
type flushHist struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64 // upper bound -> cumulative count
}

// add merges the status flush histogram of mf (other families are ignored).
func (h *flushHist) add(mf *dto.MetricFamily) {
	if mf.GetName() != metrics.Namespace+"_worker_status_flush_duration_seconds" {
		return
	}
	if h.buckets == nil {
		h.buckets = map[float64]uint64{}
	}
	for _, m := range mf.GetMetric() {
		hist := m.GetHistogram()
		h.count += hist.GetSampleCount()
		h.sum += hist.GetSampleSum()
		for _, b := range hist.GetBucket() {
			h.buckets[b.GetUpperBound()] += b.GetCumulativeCount()
		}
	}
}

// stats returns the summary, nil when no flush was observed.
func (h *flushHist) stats(processed int64) *FlushStats {
	if h.count == 0 {
		return nil
	}
	return &FlushStats{
		Flushes:        int64(h.count),
		MeanMS:         1000 * h.sum / float64(h.count),
		P50MS:          1000 * h.quantile(0.5),
		P99MS:          1000 * h.quantile(0.99),
		EventsPerFlush: float64(processed) / float64(h.count),
	}
}

// quantile estimates the q-quantile in seconds from the cumulative buckets.
func (h *flushHist) quantile(q float64) float64 {
	bounds := make([]float64, 0, len(h.buckets)+1)
	for b := range h.buckets {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	rank := q * float64(h.count)
	lower, below := 0.0, uint64(0)
	for _, ub := range bounds {
		c := h.buckets[ub]
		if float64(c) >= rank && c > below {
			if math.IsInf(ub, 1) {
				return lower // beyond the last bound: report the bound
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(c-below)
		}
		lower, below = ub, c
	}
	return lower
}
