package event

// DecodeFields decodes an entry given as its field, value pairs in stream
// order (k0, v0, k1, v1, ...), the form an XREADGROUP reply carries. A field
// that appears twice takes its last value, as in the map go-redis builds; a
// trailing field without a value is ignored. Otherwise it is DecodeEntry:
// same validation, same errors, QueueName and MessageID left to the caller.
func DecodeFields(pairs []string) (*Event, error) {
	at := indexPairs(pairs)
	// The closure holds at by value: one allocation, as a map lookup's.
	return decode(func(k string) (string, bool, error) {
		s := fieldSlot(k)
		if s < 0 {
			v, ok := lastValue(pairs, k)
			return v, ok, nil
		}
		if i := at[s]; i > 0 {
			return pairs[i-1], true, nil
		}
		return "", false, nil
	})
}

// numEntryFields is len(EntryFields); fieldSlot numbers those fields.
const numEntryFields = 20

// indexPairs finds the known entry fields of a pair list in one pass, so
// the decoder's twenty lookups cost a switch each instead of a scan or a
// map: at[fieldSlot(k)] is 1 + the index in pairs of k's last value, 0 if
// k is absent.
func indexPairs(pairs []string) (at [numEntryFields]int32) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if s := fieldSlot(pairs[i]); s >= 0 {
			at[s] = int32(i + 2) // later occurrences overwrite earlier ones
		}
	}
	return at
}

// lastValue is the value of k's last occurrence in pairs.
func lastValue(pairs []string, k string) (string, bool) {
	for i := len(pairs)&^1 - 2; i >= 0; i -= 2 {
		if pairs[i] == k {
			return pairs[i+1], true
		}
	}
	return "", false
}

// fieldSlot is the index of k in EntryFields, or -1.
func fieldSlot(k string) int {
	switch k {
	case FieldID:
		return 0
	case FieldEventType:
		return 1
	case FieldSchema:
		return 2
	case FieldAggregateID:
		return 3
	case FieldAggregateType:
		return 4
	case FieldEventVersion:
		return 5
	case FieldCorrelationID:
		return 6
	case FieldCausationID:
		return 7
	case FieldPriority:
		return 8
	case FieldScheduledAt:
		return 9
	case FieldPartitionKey:
		return 10
	case FieldTenantID:
		return 11
	case FieldOrganizationID:
		return 12
	case FieldUserID:
		return 13
	case FieldSourceService:
		return 14
	case FieldSourceVersion:
		return 15
	case FieldMaxRetries:
		return 16
	case FieldCreatedAt:
		return 17
	case FieldEventData:
		return 18
	case FieldEventMetadata:
		return 19
	}
	return -1
}
