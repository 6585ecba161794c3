package providers

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"syscall"

	"github.com/sluice-ai/sluice/llm"
)

// Options are the operator's settings for every provider.
type Options struct {
	// DenyPrivate refuses upstreams at private (RFC 1918, unique local,
	// CGNAT), loopback, link-local (169.254.169.254 is the cloud metadata
	// service), unspecified, multicast and other non-global addresses: at
	// validation for IP literals and "localhost", and at connect time for
	// every address a name resolves to, so DNS rebinding cannot bypass it.
	// Off by default: local model servers (Ollama, vLLM) are common.
	DenyPrivate bool
	// AllowPrivateImageURLs lets the image fetcher (see ImageFetcher)
	// reach non-public addresses, which it refuses by default whatever
	// DenyPrivate says (an image URL is the client's, not the operator's,
	// choice). For tests and closed labs only; ignored when DenyPrivate is
	// set.
	AllowPrivateImageURLs bool
}

// ConfigError reports an invalid provider field. Its message never
// contains a credential.
type ConfigError struct {
	// Field is the JSON name of the offending field ("base_url",
	// "headers.Host", "options.organization").
	Field   string
	Message string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Message }

// FieldName returns Field; store uses it to report the field.
func (e *ConfigError) FieldName() string { return e.Field }

func invalid(field, format string, args ...any) error {
	return &ConfigError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Validate checks p as its family will build it, and normalises it in
// place: the family's default base URL is filled in, the base URL loses
// its trailing slash, header names are canonicalised and options are
// re-encoded canonically. It is the hook the store runs on every provider
// write (server injects it), and the registry runs it again on load.
// Messages never contain a credential.
func (o Options) Validate(p *llm.Provider) error {
	fam, ok := families()[p.Type]
	if !ok {
		return invalid("type", "unknown provider type %q (known: %s)", clip(string(p.Type), 64), strings.Join(KnownTypes(), ", "))
	}
	if p.BaseURL == "" && fam.defaultFor != nil {
		p.BaseURL = fam.defaultFor(p)
	}
	if p.BaseURL == "" && !fam.optionsBaseURL {
		if fam.defaultBaseURL == "" {
			return invalid("base_url", "is required for type %q", p.Type)
		}
		p.BaseURL = fam.defaultBaseURL
	}
	var err error
	if p.BaseURL != "" {
		base, err := o.checkBaseURL(p.BaseURL)
		if err != nil {
			return err
		}
		p.BaseURL = base
	}
	if p.Headers, err = checkHeaders(p.Headers); err != nil {
		return err
	}
	if err := fam.validate(p); err != nil {
		return err
	}
	if fam.urls != nil {
		for field, u := range fam.urls(p) {
			if _, err := o.checkURL(field, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkBaseURL accepts an absolute http(s) URL with a host and nothing
// the gateway would have to splice around: no credentials, query or
// fragment. It returns the URL without trailing slashes.
func (o Options) checkBaseURL(raw string) (string, error) {
	return o.checkURL("base_url", raw)
}

// checkURL is checkBaseURL for the upstream URL in field.
func (o Options) checkURL(field, raw string) (string, error) {
	if len(raw) > maxBaseURLLen {
		return "", invalid(field, "must be at most %d bytes", maxBaseURLLen)
	}
	if strings.ContainsAny(raw, "\x00\r\n\t ") || strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", invalid(field, "must not contain spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", invalid(field, "must be an absolute http or https URL such as https://api.example.com/v1")
	}
	if u.User != nil {
		return "", invalid(field, "must not contain credentials; use api_key, secrets or headers")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", invalid(field, "must not contain a query string (the endpoint path is appended to it); put family settings in options")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", invalid(field, "must not contain a fragment")
	}
	host := u.Hostname()
	if host == "" {
		return "", invalid(field, "has no host")
	}
	if port := u.Port(); port != "" {
		if n, ok := parsePort(port); !ok || n == 0 {
			return "", invalid(field, "has an invalid port")
		}
	}
	addr, isIP := parseHostIP(host)
	if !isIP && looksNumeric(host) {
		// "2130706433" or "0x7f.1": some resolvers read these as IPs.
		return "", invalid(field, "host must be a DNS name or an IP address in standard notation")
	}
	if o.DenyPrivate {
		if isIP && deniedAddr(addr) {
			return "", invalid(field, "points at a private, loopback, link-local or otherwise non-public address, which this gateway refuses (SLUICE_UPSTREAM_DENY_PRIVATE)")
		}
		if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
			return "", invalid(field, "points at localhost, which this gateway refuses (SLUICE_UPSTREAM_DENY_PRIVATE)")
		}
	}
	return strings.TrimRight(raw, "/"), nil
}

func parsePort(s string) (int, bool) {
	if len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n <= 65535
}

// parseHostIP parses a URL host (brackets already removed) as an IP,
// zone included.
func parseHostIP(host string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

// looksNumeric reports a host made only of digits, dots and hex letters
// with an "x" that does not parse as a standard IP: legacy inet_aton forms.
func looksNumeric(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "" {
		return false
	}
	labels := strings.Split(h, ".")
	// A DNS name's last label is never all digits (RFC 3696 §2).
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return true
	}
	return strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == ""
}

// deniedAddr reports an address that is not a public unicast address:
// netip's loopback, private, unspecified, link-local and multicast
// predicates, plus "this network", CGNAT, reserved, documentation and
// benchmarking ranges, deprecated site-local IPv6, and IPv4 addresses
// embedded in NAT64 and 6to4 addresses.
func deniedAddr(a netip.Addr) bool {
	a = a.WithZone("")
	if a.Is4In6() {
		a = a.Unmap()
	}
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() {
		return true
	}
	if a.Is4() {
		b := a.As4()
		switch {
		case b[0] == 0, b[0] >= 240: // "this network"; reserved and broadcast
			return true
		case b[0] == 100 && b[1]&0xc0 == 64: // 100.64.0.0/10 carrier-grade NAT
			return true
		case b[0] == 192 && b[1] == 0 && (b[2] == 0 || b[2] == 2): // IETF assignments, documentation
			return true
		case b[0] == 198 && (b[1] == 18 || b[1] == 19): // benchmarking
			return true
		case b[0] == 198 && b[1] == 51 && b[2] == 100, b[0] == 203 && b[1] == 0 && b[2] == 113: // documentation
			return true
		}
		return false
	}
	b := a.As16()
	switch {
	case b[0] == 0xfe && b[1]&0xc0 == 0xc0: // fec0::/10 deprecated site-local
		return true
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8: // 2001:db8::/32 documentation
		return true
	case b[0] == 0x01 && b[1] == 0 && [6]byte(b[2:8]) == [6]byte{}: // 100::/64 discard
		return true
	case [12]byte(b[:12]) == [12]byte{0, 0x64, 0xff, 0x9b}: // 64:ff9b::/96 NAT64
		return deniedAddr(netip.AddrFrom4([4]byte(b[12:16])))
	case b[0] == 0x20 && b[1] == 0x02: // 2002::/16 6to4
		return deniedAddr(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return false
}

// errDeniedAddr is returned by the dialer for a refused address.
var errDeniedAddr = errors.New("upstream address is private, loopback, link-local or otherwise non-public, which this gateway refuses (SLUICE_UPSTREAM_DENY_PRIVATE)")

// denyPrivateControl is a net.Dialer.Control that refuses non-public
// addresses. It sees every address the dialer tries after resolution.
func denyPrivateControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return errDeniedAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil || deniedAddr(a) {
		return errDeniedAddr
	}
	return nil
}

// forbiddenHeader reports headers a provider may not set: they belong to
// the transport (framing, connection management, proxies) or are set by
// the gateway from the request, and would be ignored or break the call.
func forbiddenHeader(canon string) bool {
	switch canon {
	case "Host", "Content-Length", "Content-Encoding", "Transfer-Encoding", "Connection", "Upgrade",
		"Te", "Trailer", "Keep-Alive", "Expect", "Accept-Encoding":
		return true
	}
	return strings.HasPrefix(canon, "Proxy-")
}

// Limits on provider configuration.
const (
	maxBaseURLLen  = 2048
	maxHeaders     = 64
	maxHeaderValue = 8 << 10
)

// checkHeaders validates static provider headers and returns them with
// canonical names.
func checkHeaders(in map[string]string) (map[string]string, error) {
	if len(in) > maxHeaders {
		return nil, invalid("headers", "at most %d headers", maxHeaders)
	}
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names) // deterministic first error
	out := make(map[string]string, len(in))
	for _, k := range names {
		v := in[k]
		if !validHeaderName(k) {
			return nil, invalid("headers", "header name %q is not a valid HTTP token", clip(k, 64))
		}
		canon := http.CanonicalHeaderKey(k)
		if forbiddenHeader(canon) {
			return nil, invalid("headers."+canon, "is managed by the transport or the gateway and cannot be set")
		}
		if _, dup := out[canon]; dup {
			return nil, invalid("headers."+canon, "is given twice (header names are case-insensitive)")
		}
		if !validHeaderValue(v) || len(v) > maxHeaderValue {
			return nil, invalid("headers."+canon, "value must be at most 8 KiB without CR, LF, NUL or other control characters")
		}
		out[canon] = v
	}
	return out, nil
}

// isTokenChar reports whether c may appear in an HTTP header name (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// validHeaderValue rejects CR, LF, NUL and other control bytes except tab,
// and leading or trailing whitespace (which HTTP strips).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return s == strings.TrimSpace(s)
}
