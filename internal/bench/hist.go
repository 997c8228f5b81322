package bench

import (
	"math/bits"
	"sync"
	"time"
)

// subBuckets per power of two: values are kept to within 1/64 (about 1.6%)
// of their true size, HDR-style, in constant memory however long the run.
const (
	subBits    = 6
	subBuckets = 1 << subBits
	maxExp     = 40 // 2^40 µs is about 12 days: nothing real is longer
)

// Histogram records durations at microsecond resolution with bounded
// relative error. It is safe for concurrent use.
type Histogram struct {
	mu     sync.Mutex
	counts [maxExp * subBuckets]uint64
	n      uint64
	max    int64
}

// bucket maps v (µs, >= 0) to its bucket: exact below subBuckets, then
// subBuckets linear slots per power of two.
func bucket(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	exp := bits.Len64(uint64(v)) - subBits // >= 1
	i := exp*subBuckets + int(v>>uint(exp-1)) - subBuckets
	if i >= maxExp*subBuckets {
		return maxExp*subBuckets - 1
	}
	return i
}

// lowest is the smallest value that falls in bucket i.
func lowest(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	exp := i / subBuckets
	return int64(i%subBuckets+subBuckets) << uint(exp-1)
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(d.Microseconds(), 0)
	h.mu.Lock()
	h.counts[bucket(v)]++
	h.n++
	h.max = max(h.max, v)
	h.mu.Unlock()
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Quantile returns the q-quantile (0 < q <= 1) in milliseconds, or 0 when
// nothing was recorded. It answers the lowest value of the bucket holding
// the quantile, capped by the largest value seen.
func (h *Histogram) Quantile(q float64) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return float64(min(lowest(i), h.max)) / 1000
		}
	}
	return float64(h.max) / 1000
}

// Percentiles is the p50/p95/p99 triple of the JSON report, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Percentiles summarises h.
func (h *Histogram) Percentiles() Percentiles {
	return Percentiles{P50: h.Quantile(0.50), P95: h.Quantile(0.95), P99: h.Quantile(0.99)}
}
