package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// CounterCache holds the children of one counter vector that share every
// label but one, so a hot path does not pay for WithLabelValues (which
// hashes and validates every label under the vector's lock) on each
// increment. A child is made on first use, so only series that happened
// are exported; the cache is bounded by the vector's own cardinality.
type CounterCache struct {
	m sync.Map // label value -> prometheus.Counter
}

// Get returns the child for label value v, made by mk on first use. Two
// callers may both call mk for a new v; WithLabelValues gives them the same
// child.
func (c *CounterCache) Get(v string, mk func(v string) prometheus.Counter) prometheus.Counter {
	if x, ok := c.m.Load(v); ok {
		return x.(prometheus.Counter)
	}
	x, _ := c.m.LoadOrStore(v, mk(v))
	return x.(prometheus.Counter)
}
