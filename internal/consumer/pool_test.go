package consumer

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestIdleWorkersKeepTheirStacks: pool workers that grew their stacks on
// a task keep them while idle across garbage collections (nextTask), so
// the next task does not grow and copy them again.
// The race detector changes stack growth, and the stacks do not shrink
// there either way: make test runs this test again without -race.
func TestIdleWorkersKeepTheirStacks(t *testing.T) {
	if raceEnabled {
		t.Skip("stacks do not shrink the same way under the race detector; run without -race")
	}
	const workers = 64
	c, err := New(nil, Options{
		Group: "g", Consumer: "c", Subscriptions: []string{"tenants:*"},
		Concurrency: workers, BatchSize: 64, Block: time.Second, ClaimMinIdle: time.Minute, ClaimInterval: time.Second,
	}, ProcessorFunc(func(context.Context, Delivery) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.closePool()
	ctx := context.Background()
	var grown sync.WaitGroup
	release := make(chan struct{})
	for range workers {
		grown.Add(1)
		if !c.Dispatch(ctx, ctx, func(context.Context) {
			useStack(12) // about 3.5 KB: an 8 KB stack
			grown.Done()
			<-release // all at once: one worker each
		}) {
			t.Fatal("dispatch refused")
		}
	}
	grown.Wait()
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for c.idle.Load() < workers {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d workers idle", c.idle.Load(), workers)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // the last ones from idle to parked
	before := stackInuse()
	runtime.GC()
	runtime.GC()
	after := stackInuse()
	// Shrunk twice, each worker's 8 KB stack would give back 6 KB.
	if lost := int64(before) - int64(after); lost > workers*2<<10 {
		t.Fatalf("idle workers' stacks shrank by %d KB over two collections (%d → %d KB)", lost>>10, before>>10, after>>10)
	}
}

func stackInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// useStack uses about n × 280 bytes of stack.
//
//go:noinline
func useStack(n int) byte {
	var buf [256]byte
	buf[n%len(buf)] = byte(n)
	if n == 0 {
		return buf[0]
	}
	return useStack(n-1) + buf[n%len(buf)]
}
