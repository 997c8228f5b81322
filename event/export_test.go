package event

// ValidJSON exposes validJSON to the external tests.
var ValidJSON = validJSON

// ParseTimeGeneral is ParseTime without its fast path for TimeLayout.
var ParseTimeGeneral = parseTime

// FieldIndex is fieldIndex, for tests.
var FieldIndex = fieldIndex

// NumEntryFields is numEntryFields, for tests.
const NumEntryFields = numEntryFields
