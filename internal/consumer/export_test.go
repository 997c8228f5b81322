package consumer

// RecordingFactor is recordingFactor, for tests.
const RecordingFactor = recordingFactor
