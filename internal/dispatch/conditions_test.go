package dispatch

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConditions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		conds string
		data  string
		want  bool
	}{
		{name: "null conditions", conds: `null`, data: `{}`, want: true},
		{name: "empty object", conds: `{}`, data: `{"a":1}`, want: true},
		{name: "string equal", conds: `{"role":"admin"}`, data: `{"role":"admin"}`, want: true},
		{name: "string differs", conds: `{"role":"admin"}`, data: `{"role":"user"}`, want: false},
		{name: "type differs", conds: `{"n":"1"}`, data: `{"n":1}`, want: false},
		{name: "int equals float", conds: `{"n":1}`, data: `{"n":1.0}`, want: true},
		{name: "exponent form", conds: `{"n":1000}`, data: `{"n":1e3}`, want: true},
		{name: "large ints exact", conds: `{"n":9007199254740993}`, data: `{"n":9007199254740992}`, want: false},
		{name: "decimals exact", conds: `{"n":0.3}`, data: `{"n":0.30}`, want: true},
		{name: "huge exponent is not expanded", conds: `{"n":1e999999999}`, data: `{"n":2e999999999}`, want: true /* both +Inf as float64 */},
		{name: "nested path", conds: `{"user.role":"admin"}`, data: `{"user":{"role":"admin"}}`, want: true},
		{name: "deep nested path", conds: `{"a.b.c":true}`, data: `{"a":{"b":{"c":true}}}`, want: true},
		{name: "path through non-object", conds: `{"user.role":"admin"}`, data: `{"user":"admin"}`, want: false},
		{name: "missing path", conds: `{"plan":"pro"}`, data: `{}`, want: false},
		{name: "missing path vs null", conds: `{"plan":null}`, data: `{}`, want: false},
		{name: "explicit null", conds: `{"plan":null}`, data: `{"plan":null}`, want: true},
		{name: "one of hit", conds: `{"plan":["pro","enterprise"]}`, data: `{"plan":"enterprise"}`, want: true},
		{name: "one of miss", conds: `{"plan":["pro","enterprise"]}`, data: `{"plan":"free"}`, want: false},
		{name: "one of numbers", conds: `{"n":[1,2,3]}`, data: `{"n":2.0}`, want: true},
		{name: "array value needs nesting", conds: `{"tags":[["a","b"]]}`, data: `{"tags":["a","b"]}`, want: true},
		{name: "array not one of its own elements", conds: `{"tags":["a","b"]}`, data: `{"tags":["a","b"]}`, want: false},
		{name: "object deep equal", conds: `{"o":{"x":1,"y":[true,null]}}`, data: `{"o":{"y":[true,null],"x":1.0}}`, want: true},
		{name: "object differs", conds: `{"o":{"x":1}}`, data: `{"o":{"x":1,"y":2}}`, want: false},
		{name: "all must hold", conds: `{"a":1,"b":2}`, data: `{"a":1,"b":3}`, want: false},
		{name: "bool", conds: `{"ok":false}`, data: `{"ok":false}`, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := parseConditions([]byte(tc.conds))
			require.NoError(t, err)
			data, err := decodeJSON([]byte(tc.data))
			require.NoError(t, err)
			require.Equal(t, tc.want, cs.match(data))
		})
	}
}

func TestConditionsMalformed(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`[1,2]`, `"x"`, `3`, `{"a..b":1}`, `{"":1}`, `{"a.":1}`, `{bad json`, `{"a":1} {}`} {
		t.Run(raw, func(t *testing.T) {
			_, err := parseConditions([]byte(raw))
			require.Error(t, err)
			require.True(t, errors.Is(err, errBadCondition), "got %v", err)
		})
	}
}
