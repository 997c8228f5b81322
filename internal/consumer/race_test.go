//go:build race

package consumer

// raceEnabled: the race detector changes how stacks grow and shrink.
const raceEnabled = true
