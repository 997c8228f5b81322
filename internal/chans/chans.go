// Package chans has channel helpers for the hot paths of the worker.
package chans

import "context"

// Send sends v on ch, waiting while ch is full; it returns false if ctx
// ends first. A send that can go through at once does so without a two-way
// select on ch and ctx.Done(), the usual case on a hot path and measurably
// cheaper, unless ctx has already ended: then it behaves as the plain
// select, so a caller that is stopping sends no more than before.
func Send[T any](ctx context.Context, ch chan<- T, v T) bool {
	if ctx.Err() == nil {
		select {
		case ch <- v:
			return true
		default:
		}
	}
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}
