package quota

import (
	"math/rand/v2"
	"testing"
)

// TestParseGarbage: whatever a Redis answers, parsing gives an error or a
// decision, never a panic.
func TestParseGarbage(t *testing.T) {
	good, _ := parseAdmit(validAdmit(2), 2)
	if !good.allowed || len(good.raws) != 2 {
		t.Fatalf("a valid answer: %+v", good)
	}
	r := rand.New(rand.NewPCG(3, 4))
	values := []any{int64(0), int64(1), int64(-1), int64(1 << 62), "x", nil, []any{}, 1.5, []any{int64(1)}}
	for range 20000 {
		v := validAdmit(1 + r.IntN(3))
		switch r.IntN(3) {
		case 0:
			v = v[:r.IntN(len(v)+1)]
		case 1:
			v[r.IntN(len(v))] = values[r.IntN(len(values))]
		default:
			v = append(v, values[r.IntN(len(values))])
		}
		for n := range 4 {
			a, err := parseAdmit(v, n)
			if err == nil && (len(a.raws) != n || len(a.took) != n) {
				t.Fatalf("parsed %v as %+v", v, a)
			}
		}
	}
	for _, v := range []any{nil, "x", int64(3), []any{nil}} {
		if _, err := asList(v); err == nil {
			if _, err := parseAdmit(v.([]any), 1); err == nil {
				t.Fatalf("%v parsed", v)
			}
		}
	}
}

// validAdmit is an admit answer allowing n subjects.
func validAdmit(n int) []any {
	v := []any{int64(1), int64(-1), int64(0), int64(0), int64(1700000000000000), int64(0)}
	for range n {
		for range rawStateLen + 7 {
			v = append(v, int64(0))
		}
	}
	return v
}
