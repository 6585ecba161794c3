package store

import (
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var providerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

// maxTimeout bounds every configurable timeout.
const maxTimeout = time.Hour

// Limits on free-form input.
const (
	maxHeaders      = 64
	maxHeaderValue  = 8 << 10
	maxAPIKeyLen    = 8 << 10
	maxNameLen      = 128
	maxMetadata     = 64
	maxMetadataLen  = 1024
	maxKeyModels    = 1024
	maxDeployments  = 256
	maskPlaceholder = "****"
)

// isTokenChar reports whether c may appear in an HTTP header name (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// validHeaderValue rejects CR, LF, NUL and other control bytes except tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validateBaseURL checks that raw is an absolute http(s) URL without
// credentials or fragment, and returns it without a trailing slash.
func validateBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", invalid("base_url", "must be an absolute http or https URL")
	}
	if u.User != nil {
		return "", invalid("base_url", "must not contain credentials; use api_key or headers")
	}
	if u.Fragment != "" || strings.ContainsAny(raw, "\r\n\x00 ") {
		return "", invalid("base_url", "must not contain a fragment, spaces or control characters")
	}
	return strings.TrimRight(raw, "/"), nil
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

// sensitiveHeader reports whether a static header probably carries a
// credential, so its value is masked in views.
func sensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	if n == "authorization" || n == "proxy-authorization" || n == "cookie" {
		return true
	}
	for _, w := range []string{"key", "token", "secret", "auth", "password", "signature"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
