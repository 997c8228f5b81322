package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

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
