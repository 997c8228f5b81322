package chans_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/chans"
)

func TestSend(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		room    bool          // the channel has a free slot
		cancel  bool          // ctx has ended before Send
		freeIn  time.Duration // a receiver frees a slot after this (0: never)
		timeout time.Duration // ctx ends after this (0: never)
		want    bool
	}{
		{name: "room", room: true, want: true},
		{name: "full, then freed", freeIn: 20 * time.Millisecond, want: true},
		{name: "full, ctx ends", timeout: 20 * time.Millisecond, want: false},
		{name: "full, ctx already ended", cancel: true, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ch := make(chan int, 1)
			if !tc.room {
				ch <- 0
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			if tc.timeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			if tc.freeIn > 0 {
				go func() { time.Sleep(tc.freeIn); <-ch }()
			}
			require.Equal(t, tc.want, chans.Send(ctx, ch, 7))
			if tc.want {
				require.Eventually(t, func() bool { return len(ch) == 1 }, time.Second, time.Millisecond)
				require.Equal(t, 7, <-ch, "the value sent is the one received")
			}
		})
	}
}

func BenchmarkSend(b *testing.B) {
	ctx := context.Background()
	ch := make(chan struct{}, 1)
	for b.Loop() {
		chans.Send(ctx, ch, struct{}{})
		<-ch
	}
}
