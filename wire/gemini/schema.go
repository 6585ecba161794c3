package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
)

// schemaKey reports the JSON Schema keywords Gemini's Schema (an OpenAPI
// 3.0 subset) accepts. Every other keyword is dropped, among them
// "$schema", "$id", "$ref", "$defs", "definitions",
// "additionalProperties", "strict", "unevaluatedProperties",
// "patternProperties", "not", "if"/"then"/"else", "examples", "readOnly",
// "writeOnly", "contentEncoding" and "exclusiveMinimum"/"exclusiveMaximum":
// Gemini answers 400 to unknown keywords.
func schemaKey(k string) bool {
	switch k {
	case "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
		"required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example",
		"anyOf", "propertyOrdering", "default", "items", "minimum", "maximum":
		return true
	}
	return false
}

// formatOK reports the formats Gemini accepts for a type; others ("uri",
// "email", "uuid"…) are dropped rather than refused by the upstream.
func formatOK(typ, f string) bool {
	switch typ {
	case "string":
		return f == "enum" || f == "date-time"
	case "number", "integer":
		return f == "int32" || f == "int64" || f == "float" || f == "double"
	}
	return false
}

var errSchemaDepth = errors.New("schema nested too deeply")

// sanitizeSchema rewrites a JSON Schema into the subset Gemini accepts:
// unknown keywords dropped (see schemaKeys); "type": ["string","null"]
// becomes "type": "string" with "nullable": true; "oneOf" becomes
// "anyOf"; "const" becomes a one-value "enum"; tuple "items" keep their
// first schema; unsupported formats are dropped. For function parameters
// (params), an object schema without properties yields no parameters at
// all (nil), as Gemini refuses an OBJECT without properties there.
func sanitizeSchema(raw json.RawMessage, params bool) (json.RawMessage, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, errors.New("not valid JSON")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("must be a JSON object")
	}
	out, err := cleanSchema(obj, 0)
	if err != nil {
		return nil, err
	}
	if params {
		props, _ := out["properties"].(map[string]any)
		alts, _ := out["anyOf"].([]any)
		if len(props) == 0 && len(alts) == 0 {
			return nil, nil
		}
	}
	b, merr := json.Marshal(out)
	if merr != nil {
		return nil, errors.New("cannot be encoded")
	}
	return b, nil
}

func cleanSchema(in map[string]any, depth int) (map[string]any, error) {
	if depth > maxSchemaDepth {
		return nil, errSchemaDepth
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		switch k {
		case "type":
			switch t := v.(type) {
			case string:
				out["type"] = t
			case []any:
				for _, x := range t {
					s, _ := x.(string)
					if s == "null" {
						out["nullable"] = true
					} else if s != "" && out["type"] == nil {
						out["type"] = s
					}
				}
			}
		case "oneOf", "anyOf":
			arr, _ := v.([]any)
			var alts []any
			if prev, ok := out["anyOf"].([]any); ok {
				alts = prev
			}
			for _, x := range arr {
				m, ok := x.(map[string]any)
				if !ok {
					continue
				}
				c, err := cleanSchema(m, depth+1)
				if err != nil {
					return nil, err
				}
				alts = append(alts, c)
			}
			if len(alts) > 0 {
				out["anyOf"] = alts
			}
		case "const":
			if _, ok := in["enum"]; !ok {
				out["enum"] = []any{v}
			}
		case "properties":
			props, ok := v.(map[string]any)
			if !ok {
				continue
			}
			cp := make(map[string]any, len(props))
			for name, s := range props {
				m, ok := s.(map[string]any)
				if !ok {
					continue
				}
				c, err := cleanSchema(m, depth+1)
				if err != nil {
					return nil, err
				}
				cp[name] = c
			}
			out["properties"] = cp
		case "items":
			switch it := v.(type) {
			case map[string]any:
				c, err := cleanSchema(it, depth+1)
				if err != nil {
					return nil, err
				}
				out["items"] = c
			case []any:
				if len(it) > 0 {
					if m, ok := it[0].(map[string]any); ok {
						c, err := cleanSchema(m, depth+1)
						if err != nil {
							return nil, err
						}
						out["items"] = c
					}
				}
			}
		case "nullable":
			if b, ok := v.(bool); ok && b {
				out["nullable"] = true
			}
		default:
			if schemaKey(k) {
				out[k] = v
			}
		}
	}
	if f, ok := out["format"].(string); ok {
		if t, _ := out["type"].(string); !formatOK(t, f) {
			delete(out, "format")
		}
	} else {
		delete(out, "format")
	}
	if req, ok := out["required"].([]any); ok {
		// Gemini refuses required names that are not properties.
		props, _ := out["properties"].(map[string]any)
		kept := req[:0:0]
		for _, r := range req {
			if s, ok := r.(string); ok {
				if _, ok := props[s]; ok {
					kept = append(kept, s)
				}
			}
		}
		if len(kept) == 0 {
			delete(out, "required")
		} else {
			out["required"] = kept
		}
	}
	return out, nil
}
