package bedrock

import (
	"strconv"

	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// appendString appends s as a JSON string literal (jsonspan.AppendString).
func appendString(b []byte, s string) []byte { return jsonspan.AppendString(b, s) }

// appendFloat appends f as a JSON number.
func appendFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
