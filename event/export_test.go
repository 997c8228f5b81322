package event

// ValidJSON exposes validJSON to the external tests.
var ValidJSON = validJSON

// ParseTimeGeneral is ParseTime without its fast path for TimeLayout.
var ParseTimeGeneral = parseTime
