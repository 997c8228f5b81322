package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	tu "github.com/neo-events/neo-events/internal/testutil"
)

func TestSuccessCount(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    float64
		wantErr bool
	}{
		{"no such metric", "# TYPE other counter\nother 3\n", 0, false},
		{"success summed over groups, other outcomes ignored", `# TYPE neo_events_worker_events_total counter
neo_events_worker_events_total{group="a",outcome="success"} 40
neo_events_worker_events_total{group="a",outcome="failure"} 7
neo_events_worker_events_total{group="b",outcome="success"} 2
`, 42, false},
		{"garbage", "neo_events_worker_events_total{outcome=", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := successCount(strings.NewReader(tt.text), nil)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestWorkerProcesses runs e2e with the workers as processes of the real
// cmd/worker binary: the bench must count what they processed from their
// /metrics, verify it in PostgreSQL and report their RSS apart from its own.
func TestWorkerProcesses(t *testing.T) {
	tu.SkipIfShort(t)
	bin := filepath.Join(t.TempDir(), "worker")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/neo-events/neo-events/cmd/worker").CombinedOutput()
	require.NoError(t, err, string(out))

	cfg := small(ModeE2E)
	cfg.Rate = 1000
	cfg.WorkerBin = bin
	res, err := Run(tu.Context(t), cfg)
	require.NoError(t, err)
	require.True(t, res.OK, res.Failure)
	require.EqualValues(t, 300, res.Processed)
	require.EqualValues(t, 300, res.Verify.Completed)
	require.Zero(t, res.Lost)
	require.Zero(t, res.Duplicates)
	require.NotNil(t, res.WorkerRSS)
	require.Positive(t, res.WorkerRSS.Start)
	require.Positive(t, res.WorkerRSS.End)
	require.GreaterOrEqual(t, res.WorkerRSS.Max, res.WorkerRSS.End)
	// The anonymous part is read from the same /proc status: positive, and
	// smaller than the whole (the binary's mapped pages are not in it).
	require.NotNil(t, res.WorkerAnonRSS)
	require.Positive(t, res.WorkerAnonRSS.End)
	require.Less(t, res.WorkerAnonRSS.End, res.WorkerRSS.End)
	require.GreaterOrEqual(t, res.WorkerAnonRSS.Max, res.WorkerAnonRSS.End)
	requireCleanedUp(t, res)
}

func TestWorkerProcessThatCannotStartFailsTheRun(t *testing.T) {
	tu.SkipIfShort(t)
	cfg := small(ModeE2E)
	cfg.WorkerBin = filepath.Join(t.TempDir(), "no-such-worker")
	_, err := Run(tu.Context(t), cfg)
	require.ErrorContains(t, err, "no-such-worker")
}

// TestProcCPUReadsThisProcess: /proc/<pid>/stat's times agree with
// getrusage for this process, and a process that is not there is not read.
func TestProcCPUReadsThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	for x, start := 0, time.Now(); time.Since(start) < 200*time.Millisecond; x++ {
		_ = x * x // burn some CPU so that the clock ticks count it
	}
	fromStat, ok := procCPU(os.Getpid())
	require.True(t, ok)
	self, ok := selfCPU()
	require.True(t, ok)
	require.Positive(t, fromStat)
	require.InDelta(t, self.Seconds(), fromStat.Seconds(), 0.1, "stat %v, getrusage %v", fromStat, self)
	_, ok = procCPU(-1)
	require.False(t, ok)
}
