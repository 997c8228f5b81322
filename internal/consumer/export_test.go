package consumer

// RecordingFactor is recordingFactor, for tests.
const RecordingFactor = recordingFactor

// ReaderID is the client id of the read loop's own connection (0 while it
// has none, or reads through go-redis).
func (c *Consumer) ReaderID() int64 { return c.readerID.Load() }
