package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/store"
)

// maxBody is the largest request body accepted.
const maxBody = 1 << 20

// errorBody is the OpenAI error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// error renders an OpenAI-shaped error. message must be safe to show.
func (a *api) error(c *gin.Context, status int, message, typ, param, code string) {
	c.JSON(status, errorBody{Error: errorDetail{Message: message, Type: typ, Param: optional(param), Code: optional(code)}})
}

// json renders v with status. An answer that cannot be encoded (a time
// past year 9999, say) is a logged 500 in the error shape, never a 200
// with an empty body.
func (a *api) json(c *gin.Context, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		a.log.Error("admin: cannot encode the answer", "method", c.Request.Method, "route", c.FullPath(), "err", err)
		a.error(c, http.StatusInternalServerError, "internal error", "internal_error", "", "internal_error")
		return
	}
	c.Data(status, "application/json; charset=utf-8", b)
}

// fail maps a store error to a response. Unknown errors are logged and
// answered with a generic 500.
func (a *api) fail(c *gin.Context, err error) {
	var ve *store.ValidationError
	switch {
	case errors.As(err, &ve):
		a.error(c, http.StatusBadRequest, ve.Error(), "invalid_request_error", ve.Field, "invalid_value")
	case errors.Is(err, store.ErrNotFound):
		a.error(c, http.StatusNotFound, err.Error(), "invalid_request_error", "", "not_found")
	case errors.Is(err, store.ErrConflict):
		a.error(c, http.StatusConflict, err.Error(), "invalid_request_error", "", "conflict")
	default:
		a.log.Error("admin: request failed", "method", c.Request.Method, "route", c.FullPath(), "err", err)
		a.error(c, http.StatusInternalServerError, "internal error", "internal_error", "", "internal_error")
	}
}

// decode reads a JSON body of at most maxBody bytes into v strictly:
// unknown fields and trailing data are rejected. It renders the error and
// returns false on failure.
func (a *api) decode(c *gin.Context, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			a.error(c, http.StatusRequestEntityTooLarge, "request body is larger than 1 MiB", "invalid_request_error", "", "request_too_large")
			return false
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			a.error(c, http.StatusRequestTimeout, "the request body did not arrive in time", "invalid_request_error", "", "request_timeout")
			return false
		}
		a.error(c, http.StatusBadRequest, "could not read request body", "invalid_request_error", "", "invalid_json")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg, param := "invalid JSON body", ""
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			param = jsonFieldPath(te.Field)
			msg = "invalid JSON: " + param + " has the wrong type"
		case errors.As(err, &se):
			msg = "invalid JSON: syntax error at offset " + strconv.FormatInt(se.Offset, 10)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			param = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			if len(param) > 64 {
				param = param[:64]
			}
			msg = "invalid JSON: unknown field"
		case errors.Is(err, io.EOF):
			msg = "request body is empty"
		}
		a.error(c, http.StatusBadRequest, msg, "invalid_request_error", param, "invalid_json")
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		a.error(c, http.StatusBadRequest, "invalid JSON: trailing data after the object", "invalid_request_error", "", "invalid_json")
		return false
	}
	if name, dup := duplicateMember(body); dup {
		if len(name) > 64 {
			name = name[:64]
		}
		a.error(c, http.StatusBadRequest, "invalid JSON: a member appears twice in one object", "invalid_request_error", name, "invalid_json")
		return false
	}
	return true
}

// jsonFieldPath turns encoding/json's path of a field ("Limits.tpm",
// "deployments.Limits.rpm") into the JSON names only: the segments that are
// Go names of embedded structs (capitalised; every JSON name of the admin
// API is lower case) are dropped.
func jsonFieldPath(path string) string {
	segs := strings.Split(path, ".")
	out := segs[:0]
	for _, s := range segs {
		if s != "" && s[0] >= 'A' && s[0] <= 'Z' {
			continue
		}
		out = append(out, s)
	}
	return strings.Join(out, ".")
}

// duplicateMember reports a member name that appears twice in one object
// of body, anywhere in it. encoding/json would keep the last one, while a
// reviewer, a proxy or another parser may act on the first: {"models":
// ["a"], "models": []} must not be a key restricted to one model for one
// reader and unrestricted for another. Names are compared as encoding/json
// matches fields, ignoring case. body must be valid JSON (decode checks it
// first). Linear in len(body): one map per object.
func duplicateMember(body []byte) (string, bool) {
	type level struct {
		keys    map[string]struct{} // nil for an array
		wantKey bool
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []level
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil && stack[n-1].wantKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				continue
			}
			name, _ := tok.(string)
			folded := foldName(name)
			if _, dup := stack[n-1].keys[folded]; dup {
				return name, true
			}
			stack[n-1].keys[folded] = struct{}{}
			stack[n-1].wantKey = false
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey = true // this token starts the member's value
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, level{keys: map[string]struct{}{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, level{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// foldName folds a member name as encoding/json does when it matches
// fields: each rune to the smallest of its simple case folds.
func foldName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		for {
			f := unicode.SimpleFold(r)
			if f <= r {
				r = f
				break
			}
			r = f
		}
		b.WriteRune(r)
	}
	return b.String()
}

// listResponse is every list endpoint's envelope.
type listResponse[T any] struct {
	Items    []T `json:"items"`
	Total    int `json:"total"`
	Page     int `json:"page"`
	PageSize int `json:"page_size"`
}

// page parses ?page and ?page_size (1-based; page_size above
// store.MaxPageSize is capped). It renders a 400 and returns false when
// either is not a positive integer, or when the page starts past any
// result the store could count (page × page_size overflows).
func (a *api) page(c *gin.Context) (store.Page, bool) {
	var p store.Page
	for _, f := range []struct {
		name string
		dst  *int
	}{{"page", &p.Page}, {"page_size", &p.PageSize}} {
		if v := c.Query(f.name); v != "" { // empty is absent, as for ?from and ?to
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				a.error(c, http.StatusBadRequest, f.name+" must be a positive integer", "invalid_request_error", f.name, "invalid_value")
				return p, false
			}
			*f.dst = n
		}
	}
	p = p.Normalize()
	if p.Page > math.MaxInt64/p.PageSize {
		a.error(c, http.StatusBadRequest, "page is too large for page_size", "invalid_request_error", "page", "invalid_value")
		return p, false
	}
	return p, true
}
