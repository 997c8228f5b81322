package dispatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// errBadCondition marks a `conditions` value that cannot be evaluated.
var errBadCondition = errors.New("malformed conditions")

// maxPathDepth bounds a condition path; deeper paths are a mistake.
const maxPathDepth = 32

// condition is one `"path": expected` pair of a conditions object.
type condition struct {
	path  []string // event_data keys, outermost first
	want  any      // decoded with UseNumber
	oneOf bool     // want is a []any and any element may match
}

// conditions all have to hold; none means the row always matches.
type conditions []condition

// parseConditions compiles a `conditions` JSON object: keys are dot-separated
// paths into event_data, values the expected JSON value, a JSON array meaning
// "one of its elements". SQL NULL, JSON null and {} mean no conditions.
func parseConditions(raw []byte) (conditions, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadCondition, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: want a JSON object of path: value, got %s", errBadCondition, jsonKind(v))
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic evaluation order
	cs := make(conditions, 0, len(keys))
	for _, k := range keys {
		path := strings.Split(k, ".")
		if len(path) > maxPathDepth || containsEmpty(path) {
			return nil, fmt.Errorf("%w: path %q: want dot-separated non-empty keys, at most %d", errBadCondition, k, maxPathDepth)
		}
		_, isList := obj[k].([]any)
		cs = append(cs, condition{path: path, want: obj[k], oneOf: isList})
	}
	return cs, nil
}

func containsEmpty(ss []string) bool {
	for _, s := range ss {
		if s == "" {
			return true
		}
	}
	return false
}

// match reports whether data (decoded event_data) satisfies every condition.
func (cs conditions) match(data any) bool {
	for i := range cs {
		if !cs[i].match(data) {
			return false
		}
	}
	return true
}

func (c *condition) match(data any) bool {
	got, ok := lookup(data, c.path)
	if !ok {
		return false
	}
	if !c.oneOf {
		return jsonEqual(got, c.want)
	}
	for _, w := range c.want.([]any) {
		if jsonEqual(got, w) {
			return true
		}
	}
	return false
}

// lookup walks path through nested objects; a missing key or a non-object on
// the way means "absent", which no condition matches.
func lookup(data any, path []string) (any, bool) {
	cur := data
	for _, k := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// jsonEqual is equality of decoded JSON values: numbers by value (1 == 1.0
// == 1e0), arrays element-wise, objects key-wise.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numberEqual(x, y)
	case []any:
		y, ok := b.([]any)
		return ok && arrayEqual(x, y)
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && objectEqual(x, y)
	}
	return false
}

func arrayEqual(x, y []any) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !jsonEqual(x[i], y[i]) {
			return false
		}
	}
	return true
}

func objectEqual(x, y map[string]any) bool {
	if len(x) != len(y) {
		return false
	}
	for k, xv := range x {
		yv, ok := y[k]
		if !ok || !jsonEqual(xv, yv) {
			return false
		}
	}
	return true
}

// numberEqual compares exactly: integers as int64 when both fit, otherwise
// as rationals, so large ids do not collide the way float64 would make them.
func numberEqual(x, y json.Number) bool {
	if x == y {
		return true
	}
	xi, errX := strconv.ParseInt(string(x), 10, 64)
	yi, errY := strconv.ParseInt(string(y), 10, 64)
	if errX == nil && errY == nil {
		return xi == yi
	}
	if hugeExponent(x) || hugeExponent(y) {
		// big.Rat would build 10^exp exactly: event_data is untrusted, so
		// such numbers are compared as float64 instead.
		xf, okX := parseFloat(x)
		yf, okY := parseFloat(y)
		return okX && okY && xf == yf
	}
	xr, okX := new(big.Rat).SetString(string(x))
	yr, okY := new(big.Rat).SetString(string(y))
	return okX && okY && xr.Cmp(yr) == 0
}

// parseFloat accepts out-of-range values as ±Inf or 0, which is what they
// compare as.
func parseFloat(n json.Number) (float64, bool) {
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil || errors.Is(err, strconv.ErrRange)
}

// maxExactExponent bounds the exponents compared exactly.
const maxExactExponent = 400

func hugeExponent(n json.Number) bool {
	i := strings.IndexAny(string(n), "eE")
	if i < 0 {
		return false
	}
	exp, err := strconv.Atoi(string(n[i+1:]))
	return err != nil || exp > maxExactExponent || exp < -maxExactExponent
}

// decodeJSON decodes one JSON value with numbers kept as json.Number and
// refuses trailing data.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return "an object"
}
