package quota

import (
	"bytes"
	"encoding/json"

	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// A minimal JSON walker for PromptTokens: it finds the spans of values
// without building them, so that a body of millions of tiny messages costs
// one pass and no allocation per element. It never panics on invalid
// input; it reports false instead (after the members before the fault).

// eachMember calls fn with each member of the object b (its raw name,
// still escaped, and its value). It reports false when b is not an object.
func eachMember(b []byte, fn func(name, v []byte)) bool {
	_, err := jsonspan.EachMember(b, func(name []byte, vs, ve int) error {
		fn(name, b[vs:ve])
		return nil
	})
	return err == nil
}

// eachElement calls fn with each element of the array b.
func eachElement(b []byte, fn func(v []byte)) {
	i := jsonspan.SkipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return
	}
	for i = jsonspan.SkipWS(b, i+1); i < len(b) && b[i] != ']'; {
		ve := jsonspan.ValueEnd(b, i)
		if ve <= i {
			return
		}
		fn(b[i:ve])
		i = jsonspan.SkipWS(b, ve)
		if i < len(b) && b[i] == ',' {
			i = jsonspan.SkipWS(b, i+1)
		}
	}
}

// nameIs reports whether the raw member name is want (escapes decoded).
func nameIs(raw []byte, want string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == want
	}
	var s string
	return json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) == nil && s == want
}
