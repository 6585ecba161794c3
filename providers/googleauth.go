package providers

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// DefaultGoogleTokenURI is a service account's token endpoint when its
// JSON names none.
const DefaultGoogleTokenURI = "https://oauth2.googleapis.com/token"

// googleScope is the OAuth2 scope of Vertex AI calls.
const googleScope = "https://www.googleapis.com/auth/cloud-platform"

// Token lifetimes: an assertion asks for an hour, and a cached access
// token is refreshed tokenEarly before it expires.
const (
	assertionLifetime = time.Hour
	tokenEarly        = 5 * time.Minute
	tokenTimeout      = 30 * time.Second
	maxTokenBody      = 64 << 10
)

// serviceAccount is the part of a Google service-account key file the
// gateway uses.
type serviceAccount struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
	key          *rsa.PrivateKey
}

// parseServiceAccount parses and checks a service-account key file.
// Messages never quote the key.
func parseServiceAccount(raw string) (*serviceAccount, error) {
	var sa serviceAccount
	if err := json.Unmarshal([]byte(raw), &sa); err != nil {
		return nil, errors.New("is not a service-account key file (JSON)")
	}
	if sa.Type != "" && sa.Type != "service_account" {
		return nil, errors.New("must be a key file of type service_account")
	}
	if sa.ClientEmail == "" || sa.PrivateKey == "" {
		return nil, errors.New("needs client_email and private_key")
	}
	if sa.TokenURI == "" {
		sa.TokenURI = DefaultGoogleTokenURI
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return nil, errors.New("private_key is not a PEM block")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("private_key must be an RSA key")
		}
		key = rk
	} else if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		key = k
	} else {
		return nil, errors.New("private_key is not a PKCS#8 or PKCS#1 RSA key")
	}
	sa.key = key
	return &sa, nil
}

// secretParts returns the forms of the key an upstream could echo: the
// PEM body, each of its lines, and the key id. The whole JSON is not
// used: its fragments include ordinary text ("client_email").
func (sa *serviceAccount) secretParts() []string {
	var out []string
	var body strings.Builder
	for _, line := range strings.Split(sa.PrivateKey, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "-----") {
			continue
		}
		out = append(out, line)
		body.WriteString(line)
	}
	out = append(out, body.String(), sa.PrivateKeyID)
	return out
}

// assertion returns a signed RS256 JWT asking token_uri for a
// cloud-platform access token (RFC 7523).
func (sa *serviceAccount) assertion(now time.Time) (string, error) {
	hdr := map[string]string{"alg": "RS256", "typ": "JWT"}
	if sa.PrivateKeyID != "" {
		hdr["kid"] = sa.PrivateKeyID
	}
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(map[string]any{
		"iss": sa.ClientEmail, "scope": googleScope, "aud": sa.TokenURI,
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	})
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, sa.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", errors.New("cannot sign the token assertion")
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// tokenSource exchanges a service account's signed assertions for access
// tokens and caches them: a token is reused until tokenEarly before it
// expires, and one refresh runs at a time, the other callers waiting for
// it. Tokens are never logged nor put in errors.
type tokenSource struct {
	name   string
	sa     *serviceAccount
	client *Client
	red    *redactor
	now    func() time.Time

	mu       sync.Mutex
	token    string
	expiry   time.Time
	inflight chan struct{} // closed when the running refresh ends
}

// Token returns a valid access token, refreshing it when needed.
func (s *tokenSource) Token(ctx context.Context) (string, error) {
	for {
		s.mu.Lock()
		if s.token != "" && s.now().Before(s.expiry.Add(-tokenEarly)) {
			t := s.token
			s.mu.Unlock()
			return t, nil
		}
		if s.inflight == nil {
			done := make(chan struct{})
			s.inflight = done
			s.mu.Unlock()
			tok, exp, err := s.exchange(ctx)
			s.mu.Lock()
			s.inflight = nil
			if err == nil {
				s.token, s.expiry = tok, exp
			}
			close(done)
			s.mu.Unlock()
			return tok, err
		}
		wait := s.inflight
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return "", classify(ctx, s.name, ctx.Err())
		}
	}
}

// exchange performs one JWT-bearer grant.
func (s *tokenSource) exchange(ctx context.Context) (string, time.Time, error) {
	now := s.now()
	jwt, err := s.sa.assertion(now)
	if err != nil {
		return "", time.Time{}, s.fail("cannot sign its token request", err)
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {jwt}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.sa.TokenURI, strings.NewReader(form))
	if err != nil {
		return "", time.Time{}, s.fail("has an invalid token_uri", err)
	}
	req.Header["Content-Type"] = []string{"application/x-www-form-urlencoded"}
	req.Header["Accept"] = []string{"application/json"}
	resp, err := s.client.tr.RoundTrip(req)
	if err != nil {
		e := classify(ctx, s.name, s.red.redactErr(err))
		if e.Kind != llm.KindCanceled {
			e.Message = "upstream " + s.name + ": the OAuth2 token endpoint could not be reached"
			if e.Kind == llm.KindTimeout {
				e.Message = "upstream " + s.name + ": the OAuth2 token endpoint timed out"
			}
		}
		return "", time.Time{}, e
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if resp.StatusCode != http.StatusOK {
		var te struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &te)
		e := llm.Errorf(llm.KindUpstream, "upstream %s: the OAuth2 token endpoint refused the service account (HTTP %d %s)",
			s.name, resp.StatusCode, clip(s.red.str(te.Error), maxErrorField))
		e.Code, e.Provider = "upstream_auth_failed", s.name
		e.UpstreamStatus = resp.StatusCode
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			e.Code = "upstream_error"
			e.Status = http.StatusBadGateway
			e.RetryAfter = parseRetryAfter(resp.Header, time.Now())
		}
		return "", time.Time{}, e
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		TokenType   string          `json:"token_type"`
	}
	if json.Unmarshal(body, &tr) != nil || tr.AccessToken == "" || !validHeaderValue(tr.AccessToken) || len(tr.AccessToken) > 8<<10 {
		return "", time.Time{}, s.fail("got no usable access token from the OAuth2 token endpoint", nil)
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return "", time.Time{}, s.fail("got a token of a type other than Bearer", nil)
	}
	secs := int64(3600)
	if n, err := strconv.ParseInt(strings.Trim(string(bytes.TrimSpace(tr.ExpiresIn)), `"`), 10, 64); err == nil && n > 0 {
		secs = min(n, 24*3600)
	}
	return tr.AccessToken, now.Add(time.Duration(secs) * time.Second), nil
}

func (s *tokenSource) fail(what string, cause error) *llm.Error {
	e := llm.Errorf(llm.KindUpstream, "upstream %s %s", s.name, what)
	e.Code, e.Provider = "upstream_auth_failed", s.name
	if cause != nil {
		e.Err = s.red.redactErr(cause)
	}
	return e
}

// String hides the source's state from %v.
func (s *tokenSource) String() string { return fmt.Sprintf("tokenSource(%s)", s.name) }
