package bench

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/metrics"
)

func TestFlushStatsFromWorkerHistograms(t *testing.T) {
	var h flushHist
	// Two workers: 90 flushes of 3 ms and 10 of 300 ms between them.
	for w := 0; w < 2; w++ {
		reg := prometheus.NewRegistry()
		m := metrics.NewWorker(reg)
		for i := 0; i < 45; i++ {
			m.StatusFlushDuration.WithLabelValues("g").Observe(0.003)
		}
		for i := 0; i < 5; i++ {
			m.StatusFlushDuration.WithLabelValues("g").Observe(0.3)
		}
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			h.add(mf)
		}
	}
	s := h.stats(5000)
	require.NotNil(t, s)
	require.Equal(t, int64(100), s.Flushes)
	require.InDelta(t, 32.7, s.MeanMS, 0.01)
	require.InDelta(t, 50.0, s.EventsPerFlush, 1e-9)
	// 3 ms lies in the (2 ms, 4 ms] bucket, 300 ms in (256 ms, 512 ms].
	require.True(t, s.P50MS > 2 && s.P50MS <= 4, "p50 %v", s.P50MS)
	require.True(t, s.P99MS > 256 && s.P99MS <= 512, "p99 %v", s.P99MS)

	var empty flushHist
	require.Nil(t, empty.stats(10), "no flushes: no stats")
}

func TestFlushQuantileBeyondLastBucket(t *testing.T) {
	h := flushHist{count: 4, buckets: map[float64]uint64{0.001: 1, 0.002: 2, math.Inf(1): 4}}
	require.InDelta(t, 0.002, h.quantile(0.99), 1e-12, "the +Inf bucket reports the last finite bound")
	require.InDelta(t, 0.001, h.quantile(0.25), 1e-12)
}
