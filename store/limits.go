package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sluice-ai/sluice/llm"
)

// Optional is a JSON field of a patch that tells "absent" (Set false) from
// null (Set true, Value the zero value) and a value. For a limit, null and
// 0 both clear it.
type Optional[T any] struct {
	Set   bool
	Value T
}

// UnmarshalJSON implements json.Unmarshaler. Objects are decoded strictly:
// an unknown member is an error, as at the top level of an admin body.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	var zero T
	o.Value = zero
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o.Value); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("json: trailing data")
	}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (o Optional[T]) MarshalJSON() ([]byte, error) { return json.Marshal(o.Value) }

// LimitsPatch changes the limits that are set: absent keeps a limit, null
// or 0 clears it, a value sets it. Budget is replaced as a whole ("budget":
// null removes it).
type LimitsPatch struct {
	RPM         Optional[int64]        `json:"rpm"`
	TPM         Optional[int64]        `json:"tpm"`
	MaxParallel Optional[int64]        `json:"max_parallel"`
	FailMode    Optional[llm.FailMode] `json:"fail_mode"`
	Budget      Optional[*llm.Budget]  `json:"budget"`
}

// limitsPatch is the patch that sets every limit to l's.
func limitsPatch(l llm.Limits) LimitsPatch {
	return LimitsPatch{
		RPM:         Optional[int64]{true, l.RPM},
		TPM:         Optional[int64]{true, l.TPM},
		MaxParallel: Optional[int64]{true, l.MaxParallel},
		FailMode:    Optional[llm.FailMode]{true, l.FailMode},
		Budget:      Optional[*llm.Budget]{true, l.Budget},
	}
}

// apply returns l changed by p.
func (p LimitsPatch) apply(l llm.Limits) llm.Limits {
	if p.RPM.Set {
		l.RPM = p.RPM.Value
	}
	if p.TPM.Set {
		l.TPM = p.TPM.Value
	}
	if p.MaxParallel.Set {
		l.MaxParallel = p.MaxParallel.Value
	}
	if p.FailMode.Set {
		l.FailMode = p.FailMode.Value
	}
	if p.Budget.Set {
		l.Budget = p.Budget.Value
	}
	return normLimits(l)
}

// normLimits returns l with its budget copied (so a stored value never
// aliases the caller's) and dropped when every field of it is empty.
func normLimits(l llm.Limits) llm.Limits {
	if l.Budget != nil {
		if *l.Budget == (llm.Budget{}) {
			l.Budget = nil
		} else {
			b := *l.Budget
			l.Budget = &b
		}
	}
	return l
}

// validLimits checks l with llm.Limits.Validate and reports the first
// problem as a ValidationError naming the field (prefix "" for top-level
// limits, "deployments[2]" for a deployment's).
func validLimits(prefix string, l *llm.Limits) error {
	err := l.Validate(prefix)
	if err == nil {
		return nil
	}
	field, msg, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		return invalid(prefix, "%s", err.Error())
	}
	return invalid(field, "%s", msg)
}

// limitsText is l as stored: a JSON object, "{}" when l limits nothing.
func limitsText(l llm.Limits) string { return jsonText(normLimits(l)) }

// parseLimits reads a stored limits column.
func parseLimits(what, id, text string) (llm.Limits, error) {
	var l llm.Limits
	if text == "" || text == "{}" { // most rows: no limits, no decoding
		return l, nil
	}
	if err := json.Unmarshal([]byte(text), &l); err != nil {
		return l, fmt.Errorf("store: %s %s: bad limits: %w", what, id, err)
	}
	return normLimits(l), nil
}
