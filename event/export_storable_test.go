package event

// The fused validators, exposed to the external tests that compare them
// with their references.
var (
	StorableJSONFused  = storableJSON
	StorableJSONObject = storableJSONObject
	PlainASCII         = plainASCII
)
