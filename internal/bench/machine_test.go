package bench

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseProcStat(t *testing.T) {
	tick := time.Second / clockTicks
	tests := []struct {
		name    string
		text    string
		want    machineTimes
		wantErr bool
	}{
		{"two cores, every field", "cpu  100 5 40 800 20 3 7 10 6 0\ncpu0 50 2 20 400 10 1 3 5 3 0\ncpu1 50 3 20 400 10 2 4 5 3 0\nintr 1 2 3\nctxt 9\n",
			machineTimes{cores: 2, work: 155 * tick, steal: 10 * tick, idle: 820 * tick, iowait: 20 * tick}, false},
		{"an old kernel without steal", "cpu 10 0 10 100 0 0 0\ncpu0 10 0 10 100 0 0 0\n",
			machineTimes{cores: 1, work: 20 * tick, idle: 100 * tick}, false},
		{"cpufreq-like names are not cores", "cpu 1 0 1 8 0 0 0 0\ncpu0 1 0 1 8 0 0 0 0\ncpufoo 1\n",
			machineTimes{cores: 1, work: 2 * tick, idle: 8 * tick}, false},
		{"too few fields", "cpu 1 2 3\ncpu0 1 2 3\n", machineTimes{}, true},
		{"not a number", "cpu 1 x 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\n", machineTimes{}, true},
		{"negative", "cpu 1 -2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\n", machineTimes{}, true},
		{"no cpu line", "intr 1 2\n", machineTimes{}, true},
		{"no core lines", "cpu 1 2 3 4 5 6 7 8\n", machineTimes{}, true},
		{"empty", "", machineTimes{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat(tt.text)
			if tt.wantErr {
				require.ErrorIs(t, err, errProcStat)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("cpu  100 5 40 800 20 3 7 10 6 0\ncpu0 50 2 20 400 10 1 3 5 3 0\n")
	f.Add("cpu 1\ncpu")
	f.Add("cpu0\ncpu 9223372036854775807 9223372036854775807 1 1 1 1 1 1\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := parseProcStat(text)
		if err != nil {
			require.Equal(t, machineTimes{}, m)
			return
		}
		require.Positive(t, m.cores)
	})
}

func TestMachineActivity(t *testing.T) {
	s := time.Second
	start := machineTimes{cores: 2, work: 100 * s, steal: 1 * s, idle: 50 * s, iowait: 10 * s}
	tests := []struct {
		name       string
		start, end machineTimes
		events     int64
		want       *MachineCPU
	}{
		// 10 s of 2 cores: 15 s working, 1 s stolen, 4 s idle (1 s of it
		// waiting for the disk); 150,000 events at 100 µs each; the 19 s
		// not stolen allow 190,000 in 10 s.
		{"counted", start, machineTimes{cores: 2, work: 115 * s, steal: 2 * s, idle: 54 * s, iowait: 11 * s}, 150000,
			&MachineCPU{Cores: 2, BusyPct: 75, StealPct: 5, IOWaitPct: 5, USPerEvent: 100, CeilingPerSec: 1.9 * 10000}},
		{"no events", start, machineTimes{cores: 2, work: 115 * s, idle: 54 * s}, 0, nil},
		{"no time in between", start, start, 10, nil},
		{"too short for the ticks", start, machineTimes{cores: 2, work: 100*s + 300*time.Millisecond, steal: 1 * s, idle: 50*s + 190*time.Millisecond, iowait: 10 * s}, 10, nil},
		{"counters went back", machineTimes{cores: 2, work: 200 * s}, start, 10, nil},
		{"iowait went back", start, machineTimes{cores: 2, work: 115 * s, steal: 2 * s, idle: 54 * s, iowait: 9 * s}, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := machineActivity(tt.start, tt.end, tt.events)
			if tt.want == nil {
				require.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			require.Equal(t, tt.want.Cores, got.Cores)
			require.InDelta(t, tt.want.BusyPct, got.BusyPct, 1e-9)
			require.InDelta(t, tt.want.StealPct, got.StealPct, 1e-9)
			require.InDelta(t, tt.want.IOWaitPct, got.IOWaitPct, 1e-9)
			require.InDelta(t, tt.want.USPerEvent, got.USPerEvent, 1e-9)
			require.InDelta(t, tt.want.CeilingPerSec, got.CeilingPerSec, 1e-6)
		})
	}
}

// TestMachineCPUReadsThisMachine: the real /proc/stat has as many cores as
// the runtime sees (or more, where affinity hides some), and its work
// counter moves while this process burns CPU.
func TestMachineCPUReadsThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before, ok := machineCPU()
	require.True(t, ok)
	require.GreaterOrEqual(t, before.cores, runtime.NumCPU())
	for x, start := 0, time.Now(); time.Since(start) < 200*time.Millisecond; x++ {
		_ = x * x
	}
	after, ok := machineCPU()
	require.True(t, ok)
	require.Greater(t, after.work, before.work)
}

func TestTableShowsMachineCPU(t *testing.T) {
	r := &Result{Mode: ModeE2E, Config: Config{Mode: ModeE2E}.WithDefaults(), Published: 10, Processed: 10,
		Machine: &MachineCPU{Cores: 2, BusyPct: 91.4, IOWaitPct: 2.6, USPerEvent: 183.2, CeilingPerSec: 10917}}
	r.judge()
	var tbl, js bytes.Buffer
	require.NoError(t, r.WriteTable(&tbl))
	require.Regexp(t, `(?m)^machine cpu +2 cores 91 % busy`, tbl.String())
	require.Contains(t, tbl.String(), "2 cores 91 % busy (iowait 3 %, steal 0 %), 183.2 µs/event in all: at most 10917/s at this cost")
	require.NoError(t, r.WriteJSON(&js))
	require.Contains(t, js.String(), `"machine_cpu":{"cores":2,"busy_pct":91.4,"steal_pct":0,"iowait_pct":2.6,"cpu_us_per_event":183.2,"ceiling_per_sec":10917}`)
}
