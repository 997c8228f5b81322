package event

// ValidJSON exposes validJSON to the external tests.
var ValidJSON = validJSON

// DecodeOrder is the fields decode looks up by position.
var DecodeOrder = entryFields[:]

// FieldIndex exposes fieldIndex.
var FieldIndex = fieldIndex

// ParseTimeGeneral is ParseTime without its fast path for TimeLayout.
var ParseTimeGeneral = parseTime
