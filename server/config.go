package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is everything serve needs. cmd/sluice fills it from flags and the
// environment; tests fill it directly.
type Config struct {
	// Listen is the proxy listener address. Default ":9080".
	Listen string
	// TLSListen is the HTTPS proxy listener, used when TLSCert and TLSKey
	// are set. Default ":9443".
	TLSListen       string
	TLSCert, TLSKey string
	// AdminListen is the admin listener. Default "127.0.0.1:9180".
	AdminListen string
	// AdminKey authenticates the admin API; at least 32 characters. When
	// empty, New generates one (GeneratedAdminKey reports it).
	AdminKey string
	// PreviousAdminKeys are earlier admin keys still accepted during a
	// rotation (SLUICE_ADMIN_KEY_PREVIOUS, comma-separated); each is
	// checked like AdminKey. They need AdminKey.
	PreviousAdminKeys []string
	// AdminKeyDisabled refuses AdminKey and PreviousAdminKeys
	// (SLUICE_ADMIN_KEY_DISABLED): only admin keys from the database and
	// admin tokens open the admin API, and no key is generated. For
	// break-glass, unset it and restart, or run "sluice create-admin-key".
	AdminKeyDisabled bool
	// DatabaseURL: "" = SQLite in DataDir; postgres://… = PostgreSQL.
	DatabaseURL string
	// DataDir holds the SQLite file and the generated encryption key. Default "./data".
	DataDir string
	// EncryptionKey encrypts provider keys at rest (64 hex chars or base64 of 32 bytes).
	EncryptionKey string
	// RedisURL, when set, fans configuration changes out over Redis pub/sub
	// and is checked by /readyz.
	RedisURL string
	// AccessLog is "stdout" (default), "stderr", "off", or a file path.
	AccessLog string
	// AccessLogBodies adds request bodies (prompts) to the access log. Off by default.
	AccessLogBodies bool
	// CORSOrigins lists browser origins allowed to call the proxy ("*" = any).
	CORSOrigins []string
	// UsageRetention deletes usage records older than this, hourly. Zero
	// keeps them forever.
	UsageRetention time.Duration
	// MaxInFlight bounds concurrent proxy requests (503 beyond); 0 = what
	// the open-file limit allows (2 descriptors per request, 256 kept).
	MaxInFlight int64
	// QuotaTimeout bounds each quota-store call on the request path; past
	// it the limits' fail modes decide. 0 = 50ms.
	QuotaTimeout time.Duration
	// QuotaDefaultOutputTokens is the completion a request without
	// max_tokens reserves against token and money limits. 0 = 4096.
	QuotaDefaultOutputTokens int
	// UpstreamDenyPrivate refuses provider base URLs at private, loopback,
	// link-local (cloud metadata), unspecified and multicast addresses: at
	// admin write for IP literals and localhost, and at connect time for
	// every resolved address.
	UpstreamDenyPrivate bool
	// IssuersFile, when set, is a JSON file {"issuers": [...]} of JWT/OIDC
	// issuers (each as POST /admin/issuers takes it) created or replaced
	// by name at start; issuers it does not list are left alone.
	IssuersFile string
	// Pprof serves Go's profiler at /debug/pprof/ on the admin listener (behind admin auth).
	Pprof bool
	// MaxBodyBytes bounds request bodies. Default 10 MiB.
	MaxBodyBytes int64
	// MaxBufferedBytes bounds the request-body bytes all proxy requests
	// hold at once (router.Options.MaxBufferedBytes); beyond it new bodies
	// get 503 overloaded. 0 means 64 × MaxBodyBytes, at least 1 GiB.
	MaxBufferedBytes int64
	// ShutdownTimeout bounds the whole graceful shutdown: draining in-flight
	// requests, then flushing usage and logs in its last quarter (at most
	// 10s). Default 30s.
	ShutdownTimeout time.Duration
	// BodyReadTimeout bounds reading a request body on either listener,
	// counted from the end of its headers, before and after authentication.
	// Default 60s.
	BodyReadTimeout time.Duration
	// WriteTimeout bounds writing to a client that stops reading: each
	// write of a proxy answer (streamed or not) and the final flush of any
	// answer. The admin listener, which does not stream, gets four times
	// as long for a whole answer, from the end of the request's headers.
	// Default 30s.
	WriteTimeout time.Duration
	// PollInterval is the configuration version poll. Default 500ms.
	PollInterval time.Duration
}

// isExampleAdminKey reports keys printed in documentation; they are refused.
func isExampleAdminKey(k string) bool {
	switch k {
	case "edd1c9f034335f136f87ad84b625c8f1", // APISIX's documented default
		"change-me-change-me-change-me-change-me",
		"sluice-admin-key-change-me-please-0000",
		"0000000000000000000000000000000000000000000000000000000000000000":
		return true
	}
	return false
}

// SetDefaults fills empty fields.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = ":9080"
	}
	if c.TLSListen == "" {
		c.TLSListen = ":9443"
	}
	if c.AdminListen == "" {
		c.AdminListen = "127.0.0.1:9180"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.AccessLog == "" {
		c.AccessLog = "stdout"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.BodyReadTimeout <= 0 {
		c.BodyReadTimeout = 60 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.AdminKey != "" {
		if len(c.AdminKey) < 32 {
			return errors.New("admin key (SLUICE_ADMIN_KEY) must be at least 32 characters")
		}
		if isExampleAdminKey(c.AdminKey) {
			return errors.New("admin key (SLUICE_ADMIN_KEY) is a documented example; generate your own")
		}
	}
	if len(c.PreviousAdminKeys) > 0 && c.AdminKey == "" && !c.AdminKeyDisabled {
		return errors.New("SLUICE_ADMIN_KEY_PREVIOUS needs SLUICE_ADMIN_KEY: the previous keys are accepted beside the current one during a rotation")
	}
	for _, k := range c.PreviousAdminKeys {
		if len(k) < 32 {
			return errors.New("a previous admin key (SLUICE_ADMIN_KEY_PREVIOUS) must be at least 32 characters")
		}
		if isExampleAdminKey(k) {
			return errors.New("a previous admin key (SLUICE_ADMIN_KEY_PREVIOUS) is a documented example; generate your own")
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("TLS needs both SLUICE_TLS_CERT and SLUICE_TLS_KEY")
	}
	if c.UsageRetention != 0 && c.UsageRetention < time.Hour {
		return errors.New("usage retention must be at least 1h (or 0 to keep usage forever)")
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("max body bytes %s is too small", strconv.FormatInt(c.MaxBodyBytes, 10))
	}
	if c.MaxBufferedBytes < 0 || (c.MaxBufferedBytes > 0 && c.MaxBufferedBytes < c.MaxBodyBytes) {
		return fmt.Errorf("max buffered bytes (SLUICE_MAX_BUFFERED_BYTES) %s is less than the max body bytes %s: a body of the allowed size could never be read",
			strconv.FormatInt(c.MaxBufferedBytes, 10), strconv.FormatInt(c.MaxBodyBytes, 10))
	}
	return nil
}

// ParseRetention parses a retention period: a Go duration ("720h") or a
// number of days ("90d"). Empty means zero (keep forever).
func ParseRetention(v string) (time.Duration, error) {
	if v == "" || v == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid retention %q: want a number of days like 90d or a duration like 720h", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid retention %q: want a number of days like 90d or a duration like 720h", v)
	}
	return d, nil
}
