// Package gctune applies the worker's garbage-collector settings: GOGC 200
// unless the GOGC variable is set, and a soft memory limit of 90 % of the
// container's memory limit (cgroup v2 memory.max, or v1
// memory.limit_in_bytes) unless GOMEMLIMIT is set.
//
// Why: a worker allocates a little per event and keeps little, so at the
// default GOGC of 100 it spends a large share of its CPU collecting a small
// heap (publisher-bench worker mode, worker processes: 7.2 µs of worker CPU
// per event at 100 against 5.9 at 200 without status writes, 26.8 against
// 23.9 with them, for about 7 MiB more RSS per worker; docs/PERFORMANCE.md,
// session 11). The memory limit keeps the larger target from pushing a pod
// into its OOM kill: near the limit the collector runs more often instead.
package gctune

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultPercent is the GOGC the worker runs with unless GOGC is set.
const DefaultPercent = 200

// limitShare is the part of the container's memory limit given to the Go
// runtime as its soft limit; the rest is for what it does not count
// (thread stacks outside the heap, cgo, the page cache of mapped files).
const limitShare = 0.9

// cgroup files holding the memory limit: v2, then v1.
var limitFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// Settings is what Apply chose, for the startup log.
type Settings struct {
	// Percent is the GOGC in effect; -1 means the collector is off (GOGC=off).
	Percent int
	// PercentFrom is "GOGC" when the variable set it, "default" otherwise.
	PercentFrom string
	// MemoryLimit is the soft limit in bytes set from the cgroup, or 0
	// when none was set here (GOMEMLIMIT given, or no cgroup limit).
	MemoryLimit int64
	// MemoryLimitFrom is "GOMEMLIMIT", the cgroup file, or "none".
	MemoryLimitFrom string
}

// Apply sets the collector for this process and returns what it chose.
func Apply() Settings {
	s := choose(os.Getenv, os.ReadFile)
	if s.PercentFrom == "default" {
		debug.SetGCPercent(s.Percent)
	}
	if s.MemoryLimit > 0 {
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	return s
}

// choose decides without touching the runtime (for tests).
func choose(getenv func(string) string, readFile func(string) ([]byte, error)) Settings {
	s := Settings{Percent: DefaultPercent, PercentFrom: "default", MemoryLimitFrom: "none"}
	if v := getenv("GOGC"); v != "" {
		// The runtime has already applied it; report what it means.
		s.PercentFrom = "GOGC"
		s.Percent = -1
		if n, err := strconv.Atoi(v); err == nil {
			s.Percent = n
		}
	}
	if getenv("GOMEMLIMIT") != "" {
		s.MemoryLimitFrom = "GOMEMLIMIT"
		return s
	}
	for _, f := range limitFiles {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		if limit, ok := parseLimit(string(b)); ok {
			s.MemoryLimit = int64(float64(limit) * limitShare)
			s.MemoryLimitFrom = f
		}
		break
	}
	return s
}

// parseLimit reads a cgroup memory limit: a byte count, or "max" (v2) or
// a huge number (v1) for none.
func parseLimit(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0, false
	}
	return n, true
}

// String is the settings for a log line.
func (s Settings) String() string {
	gc := strconv.Itoa(s.Percent)
	if s.Percent < 0 {
		gc = "off"
	}
	limit := "none"
	if s.MemoryLimit > 0 {
		limit = fmt.Sprintf("%d MiB", s.MemoryLimit>>20)
	} else if s.MemoryLimitFrom == "GOMEMLIMIT" {
		limit = "from GOMEMLIMIT"
	}
	return fmt.Sprintf("GOGC=%s (%s), memory limit %s (%s)", gc, s.PercentFrom, limit, s.MemoryLimitFrom)
}
