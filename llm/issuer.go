package llm

import (
	"net"
	"net/url"
	"strings"
	"time"
)

// Issuer is an OIDC/JWT issuer whose tokens the proxy accepts as
// credentials, as the hot path sees it. Its HS256 secret, when set, is
// the opened plaintext; nothing outside the authenticator reads it.
type Issuer struct {
	ID   string
	Name string
	// Issuer is the exact "iss" value tokens must carry; it also selects
	// the issuer for a token.
	Issuer string
	// JWKSURI is where the signing keys are; "" means OIDC discovery at
	// Issuer + "/.well-known/openid-configuration".
	JWKSURI string
	// Audiences: a token must name at least one of them in "aud".
	Audiences []string
	// Algorithms are the signing algorithms accepted (JWTAlgorithms).
	Algorithms []string
	// Leeway widens the exp and nbf checks for clock skew.
	Leeway time.Duration
	// AllowInsecureHTTP permits plain-HTTP discovery and JWKS for a
	// loopback issuer (development and tests); refused for others.
	AllowInsecureHTTP bool
	// Models is the allow-list of every principal of the issuer; empty
	// allows every model. A models claim can only narrow it.
	Models []string
	// Claims map token claims onto the principal.
	Claims ClaimMapping
	// Admin, when set, also accepts the issuer's tokens on the admin API
	// with the role their role claim grants (see IssuerAdmin).
	Admin *IssuerAdmin
	// Limits apply to each subject of the issuer on its own (one bucket
	// per subject), like a key's limits.
	Limits Limits
	// HS256Secret is the shared secret for HS256 tokens ("" = none; HS256
	// is then refused whatever Algorithms says).
	HS256Secret string
	// Revision is the configuration version that last changed the row.
	Revision int64
}

// ClaimMapping names the claims a principal is read from.
type ClaimMapping struct {
	// Subject becomes the principal's id; default "sub".
	Subject string `json:"subject,omitempty"`
	// Team becomes the principal's owner (its limits are the owner's, see
	// Owner); "" means no owner.
	Team string `json:"team,omitempty"`
	// Models, when set and present in a token, narrows the issuer's model
	// allow-list to the models it names (a string of space-separated
	// names, as OAuth's "scope", or an array of strings).
	Models string `json:"models,omitempty"`
}

// SubjectClaim is the subject claim's name, "sub" by default.
func (c ClaimMapping) SubjectClaim() string {
	if c.Subject == "" {
		return "sub"
	}
	return c.Subject
}

// JWTAlgorithms are the signing algorithms an issuer may accept. HS256
// needs a configured secret; "none" is never accepted.
var JWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256"}

// DefaultJWTLeeway is an issuer's leeway when none is configured.
const DefaultJWTLeeway = 30 * time.Second

// MaxJWTLeeway bounds an issuer's leeway.
const MaxJWTLeeway = 5 * time.Minute

// LoopbackHost reports whether host (a URL's hostname, no port) is a
// loopback address or "localhost": the only hosts plain HTTP may reach for
// discovery and JWKS.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckIssuerURL reports why u may not be fetched for an issuer: it must
// be an absolute https URL without user info or fragment, or plain http to
// a loopback host when insecure is allowed. "" means it may.
func CheckIssuerURL(u string, insecure bool) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.Opaque != "" {
		return "must be an absolute URL"
	}
	if p.User != nil || p.Fragment != "" || strings.ContainsAny(u, " \t\r\n") {
		return "must not carry user info, a fragment or whitespace"
	}
	switch p.Scheme {
	case "https":
		return ""
	case "http":
		if !insecure {
			return "must use https (plain http only for a loopback issuer with allow_insecure_http)"
		}
		if !LoopbackHost(p.Hostname()) {
			return "plain http is only allowed for loopback hosts (127.0.0.1, ::1, localhost)"
		}
		return ""
	}
	return "must use https"
}
