package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// fetcher gets discovery documents and key sets from issuers. Requests
// go only to URLs that pass llm.CheckIssuerURL; plain HTTP goes through a
// transport whose dialer refuses every address but loopback, so even a
// "localhost" that resolves elsewhere is not reached. Redirects are not
// followed, answers are size-capped and time-bounded.
type fetcher struct {
	secure, loopback http.RoundTripper
	timeout          time.Duration
	maxBytes         int64
}

func newFetcher(o *Options) *fetcher {
	f := &fetcher{timeout: o.FetchTimeout, maxBytes: o.MaxJWKSBytes}
	if o.Transport != nil {
		f.secure, f.loopback = o.Transport, o.Transport
		return f
	}
	dial := &net.Dialer{Timeout: o.FetchTimeout}
	f.secure = &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: dial.DialContext,
		TLSHandshakeTimeout: o.FetchTimeout, ResponseHeaderTimeout: o.FetchTimeout, MaxIdleConnsPerHost: 2,
		IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}
	lo := &net.Dialer{Timeout: o.FetchTimeout, Control: loopbackOnly}
	f.loopback = &http.Transport{DialContext: lo.DialContext, ResponseHeaderTimeout: o.FetchTimeout,
		MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second}
	return f
}

// loopbackOnly refuses to connect anywhere but a loopback address.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("plain-http issuer resolved to a non-loopback address")
	}
	return nil
}

// get fetches u and returns its body, refusing what is not a 200 JSON-ish
// answer within maxBytes.
func (f *fetcher) get(ctx context.Context, u string, insecure bool) ([]byte, error) {
	if why := llm.CheckIssuerURL(u, insecure); why != "" {
		return nil, fmt.Errorf("refusing to fetch %s: %s", u, why)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	rt := f.secure
	if req.URL.Scheme == "http" {
		rt = f.loopback
	}
	res, err := rt.RoundTrip(req) // a RoundTripper never follows redirects
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: status %d", u, res.StatusCode)
	}
	if res.ContentLength > f.maxBytes {
		return nil, fmt.Errorf("fetching %s: %d bytes, more than the %d allowed", u, res.ContentLength, f.maxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, f.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	if int64(len(b)) > f.maxBytes {
		return nil, fmt.Errorf("fetching %s: more than the %d bytes allowed", u, f.maxBytes)
	}
	return b, nil
}

// discover reads an issuer's OIDC discovery document and returns its
// jwks_uri, which must name the same issuer and obey the same scheme rule.
func (f *fetcher) discover(ctx context.Context, iss *llm.Issuer) (string, error) {
	b, err := f.get(ctx, strings.TrimSuffix(iss.Issuer, "/")+"/.well-known/openid-configuration", iss.AllowInsecureHTTP)
	if err != nil {
		return "", err
	}
	var d struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return "", errors.New("discovery document is not JSON")
	}
	if d.Issuer != iss.Issuer {
		return "", errors.New("discovery document names another issuer")
	}
	if why := llm.CheckIssuerURL(d.JWKSURI, iss.AllowInsecureHTTP); why != "" {
		return "", fmt.Errorf("discovery document's jwks_uri %s", why)
	}
	return d.JWKSURI, nil
}
