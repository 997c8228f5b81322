package event

import (
	"fmt"
	"strings"
)

// Pattern matches event types: `*` (all), `users.*` (a category),
// `*.created` (an action in any category) or an exact type.
type Pattern struct {
	raw      string
	category string // "" means any
	action   string // "" means any
}

// ParsePattern validates and compiles a pattern.
func ParsePattern(s string) (Pattern, error) {
	if s == "*" {
		return Pattern{raw: s}, nil
	}
	cat, act, ok := strings.Cut(s, ".")
	if !ok || !validSegment(cat, true) || !validSegment(act, true) || (cat == "*" && act == "*") {
		return Pattern{}, fmt.Errorf("%w: event pattern %q: want *, <category>.*, *.<action> or <category>.<action>", ErrInvalid, s)
	}
	p := Pattern{raw: s}
	if cat != "*" {
		p.category = cat
	}
	if act != "*" {
		p.action = act
	}
	return p, nil
}

// MustPattern is ParsePattern for constants in code; it panics on a bad pattern.
func MustPattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// Match reports whether the event type matches the pattern. A string that
// is not a valid event type (three segments, upper case) matches nothing,
// not even `*`.
func (p Pattern) Match(eventType string) bool {
	if p.raw == "" {
		return false
	}
	cat, act, ok := strings.Cut(eventType, ".")
	if !ok || !validSegment(cat, false) || !validSegment(act, false) {
		return false
	}
	return (p.category == "" || p.category == cat) && (p.action == "" || p.action == act)
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.raw }

// MatchPattern parses pattern and matches eventType; a malformed pattern matches nothing.
func MatchPattern(pattern, eventType string) bool {
	p, err := ParsePattern(pattern)
	return err == nil && p.Match(eventType)
}

func validSegment(s string, allowStar bool) bool {
	if s == "" {
		return false
	}
	if allowStar && s == "*" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}
