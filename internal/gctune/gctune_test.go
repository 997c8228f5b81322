package gctune

import (
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChoose(t *testing.T) {
	const v2, v1 = "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	tests := []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  Settings
	}{
		{"no cgroup, no variables", nil, nil,
			Settings{Percent: 200, PercentFrom: "default", MemoryLimitFrom: "none"}},
		{"cgroup v2 limit of 1 GiB", nil, map[string]string{v2: "1073741824\n"},
			Settings{Percent: 200, PercentFrom: "default", MemoryLimit: 966367641, MemoryLimitFrom: v2}},
		{"cgroup v2 without a limit", nil, map[string]string{v2: "max\n"},
			Settings{Percent: 200, PercentFrom: "default", MemoryLimitFrom: "none"}},
		{"cgroup v1 limit", nil, map[string]string{v1: "536870912"},
			Settings{Percent: 200, PercentFrom: "default", MemoryLimit: 483183820, MemoryLimitFrom: v1}},
		{"cgroup v1 unlimited", nil, map[string]string{v1: "9223372036854771712"},
			Settings{Percent: 200, PercentFrom: "default", MemoryLimitFrom: "none"}},
		{"garbage in the file", nil, map[string]string{v2: "lots"},
			Settings{Percent: 200, PercentFrom: "default", MemoryLimitFrom: "none"}},
		{"GOGC set", map[string]string{"GOGC": "50"}, nil,
			Settings{Percent: 50, PercentFrom: "GOGC", MemoryLimitFrom: "none"}},
		{"GOGC off", map[string]string{"GOGC": "off"}, nil,
			Settings{Percent: -1, PercentFrom: "GOGC", MemoryLimitFrom: "none"}},
		{"GOMEMLIMIT wins over the cgroup", map[string]string{"GOMEMLIMIT": "300MiB"}, map[string]string{v2: "1073741824"},
			Settings{Percent: 200, PercentFrom: "default", MemoryLimitFrom: "GOMEMLIMIT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			readFile := func(f string) ([]byte, error) {
				if b, ok := tt.files[f]; ok {
					return []byte(b), nil
				}
				return nil, os.ErrNotExist
			}
			require.Equal(t, tt.want, choose(getenv, readFile))
		})
	}
}

func TestChooseIgnoresUnreadableFiles(t *testing.T) {
	s := choose(func(string) string { return "" }, func(string) ([]byte, error) { return nil, errors.New("permission denied") })
	require.Equal(t, "none", s.MemoryLimitFrom)
	require.Zero(t, s.MemoryLimit)
}

func TestString(t *testing.T) {
	require.Equal(t, "GOGC=200 (default), memory limit 921 MiB (/sys/fs/cgroup/memory.max)",
		Settings{Percent: 200, PercentFrom: "default", MemoryLimit: 966367641, MemoryLimitFrom: "/sys/fs/cgroup/memory.max"}.String())
	require.Equal(t, "GOGC=off (GOGC), memory limit none (none)", Settings{Percent: -1, PercentFrom: "GOGC", MemoryLimitFrom: "none"}.String())
}
