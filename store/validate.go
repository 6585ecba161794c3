package store

import (
	"regexp"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	providerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)
	// providerTypeRE is the syntax of a provider type; which types exist
	// is the families' business (Options.ValidateProvider).
	providerTypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	secretNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// maxTimeout bounds every configurable timeout.
const maxTimeout = time.Hour

// Limits on free-form input.
const (
	maxHeaders      = 64
	maxAPIKeyLen    = 8 << 10
	maxSecrets      = 32
	maxOptionsLen   = 16 << 10
	maxNameLen      = 128
	maxMetadata     = 64
	maxMetadataLen  = 1024
	maxKeyModels    = 1024
	maxDeployments  = 256
	maskPlaceholder = "****"
)

// validHeaderValue rejects CR, LF, NUL and other control bytes except tab:
// api keys and secrets end up in HTTP headers.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseTimeout parses a Go duration ("" means default, stored as 0).
func parseTimeout(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalid(field, "must be a duration such as \"5s\" or \"1m30s\"")
	}
	if d < 0 || d > maxTimeout {
		return 0, invalid(field, "must be between 0 and 1h")
	}
	return d, nil
}

// formatTimeout renders a stored timeout; zero (the default) renders as "".
func formatTimeout(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

// validText checks a name-like string: non-empty, at most max bytes, valid
// UTF-8, no whitespace or control characters when noSpace, no control
// characters otherwise.
func validText(field, s string, max int, noSpace bool) error {
	if s == "" {
		return invalid(field, "is required")
	}
	if len(s) > max {
		return invalid(field, "must be at most %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || (noSpace && unicode.IsSpace(r)) {
			if noSpace {
				return invalid(field, "must not contain whitespace or control characters")
			}
			return invalid(field, "must not contain control characters")
		}
	}
	return nil
}
