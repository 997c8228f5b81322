package dispatch

import "sort"

// CachedSchemas lists the schemas whose definitions are cached.
func (d *Dispatcher) CachedSchemas() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []string
	for s := range d.schemas {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// CacheOf is the cache of schema's definitions (nil when none): a new one
// after an eviction and a reload.
func (d *Dispatcher) CacheOf(schema string) any {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if c := d.schemas[schema]; c != nil {
		return c
	}
	return nil
}
