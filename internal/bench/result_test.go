package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReportFormats(t *testing.T) {
	r := &Result{Mode: ModeE2E, Config: Config{Mode: ModeE2E}.WithDefaults(), Published: 10, Processed: 9, Lost: 1,
		Baseline: map[string]float64{CeilingCopy: 100}, Ratios: map[string]float64{"processed_vs_copy": 0.5}}
	r.judge()
	var js bytes.Buffer
	require.NoError(t, r.WriteJSON(&js))
	require.Equal(t, 1, strings.Count(js.String(), "\n"))
	var obj map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &obj))
	for _, k := range []string{"published", "published_per_sec", "processed", "processed_per_sec", "lost", "duplicates",
		"publish_latency_ms", "end_to_end_latency_ms", "mode", "config", "baseline", "baseline_ratios", "ok"} {
		require.Contains(t, obj, k)
	}
	require.NotContains(t, js.String(), "postgres://", "URLs may carry credentials")
	var tbl bytes.Buffer
	require.NoError(t, r.WriteTable(&tbl))
	require.Contains(t, tbl.String(), "FAILED: 1 lost events")
	require.Contains(t, tbl.String(), "ratio processed_vs_copy")
}

func TestTableSaysWhenWorkersFellBehind(t *testing.T) {
	for _, tc := range []struct {
		behind int64
		note   bool
	}{{0, false}, {400, false}, {6000, true}} {
		r := &Result{Mode: ModeE2E, Config: Config{Mode: ModeE2E}.WithDefaults(), Published: 90000, Processed: 90000,
			ProcessedPerSec: 6000, BehindAtLoadEnd: tc.behind}
		r.judge()
		var tbl bytes.Buffer
		require.NoError(t, r.WriteTable(&tbl))
		require.Equal(t, tc.note, strings.Contains(tbl.String(), "workers fell"), "behind %d:\n%s", tc.behind, tbl.String())
	}
}

// TestRSSTrend: the fitted trend tells growth from a sawtooth, which the
// warm→end snapshot cannot.
func TestRSSTrend(t *testing.T) {
	const run = 600 // seconds, as the memory soak
	cases := []struct {
		name      string
		at        func(sec int) float64 // MiB at each second
		seconds   int
		trend     *[2]float64 // accepted range of TrendPct; nil: none computed
		snapshot  float64     // End against Warm, percent, for contrast
		minuteLo  float64     // FirstMinute
		minuteHi  float64     // LastMinute
		noMinutes bool
	}{
		{name: "flat sawtooth, warm in a trough, ending on a peak", seconds: run - 1,
			at:    func(s int) float64 { return 40 + float64(s%30)/29*8 }, // 40..48 MiB, period 30 s
			trend: &[2]float64{-1, 1}, snapshot: 20, minuteLo: 44, minuteHi: 44.1},
		{name: "steady 20% growth", seconds: run,
			at:    func(s int) float64 { return 50 * (1 + 0.2*float64(s-30)/float64(run-30)) },
			trend: &[2]float64{19.5, 20.5}, snapshot: 20, minuteLo: 50.5, minuteHi: 59.5},
		{name: "too short for a trend", seconds: 80,
			at: func(s int) float64 { return 40 + float64(s) }, noMinutes: true},
		{name: "trend without minutes", seconds: 120,
			at: func(s int) float64 { return 40 }, trend: &[2]float64{0, 0}, noMinutes: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r RSS
			for s := 1; s <= tc.seconds; s++ {
				r.sample(tc.at(s), time.Duration(s)*time.Second)
			}
			r.End = tc.at(tc.seconds)
			r.summarize()
			if tc.trend == nil {
				require.Nil(t, r.TrendPct)
				require.NotContains(t, r.growth(), "fitted")
				return
			}
			require.NotNil(t, r.TrendPct)
			require.GreaterOrEqual(t, *r.TrendPct, tc.trend[0])
			require.LessOrEqual(t, *r.TrendPct, tc.trend[1])
			require.Contains(t, r.growth(), "fitted trend")
			if tc.snapshot > 0 {
				require.InDelta(t, tc.snapshot, 100*(r.End-r.Warm)/r.Warm, 1, "the snapshot")
			}
			if tc.noMinutes {
				require.Zero(t, r.FirstMinute)
				return
			}
			require.InDelta(t, tc.minuteLo, r.FirstMinute, 0.3)
			require.InDelta(t, tc.minuteHi, r.LastMinute, 0.3)
		})
	}
}
