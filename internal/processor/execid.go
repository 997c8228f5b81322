package processor

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// newExecutionID returns a UUIDv7 for an attempt's action_executions row:
// the Unix time in milliseconds, then 74 random bits from math/rand/v2's
// global generator (the runtime's per-thread ChaCha8, seeded by the OS).
// event.NewID takes a process-wide lock to keep ids strictly increasing
// within a millisecond and draws its random bits from a buffered
// crypto/rand reader; execution ids need neither, and every attempt makes
// one.
func newExecutionID() uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], uint64(time.Now().UnixMilli())<<16|rand.Uint64()&0x0fff|0x7000)
	binary.BigEndian.PutUint64(id[8:], rand.Uint64()&^(0xc0<<56)|0x80<<56)
	return id
}
