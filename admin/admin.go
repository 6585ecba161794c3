package admin

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/auth"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/store"
)

// MinAdminKeyLen is the shortest admin key New accepts.
const MinAdminKeyLen = 32

// Options configures the admin handler.
type Options struct {
	// Store persists the configuration. Required.
	Store *store.Store
	// AdminKey is the bootstrap key: it authenticates every route but the
	// health probes with the admin role. At least MinAdminKeyLen characters.
	AdminKey string
	// PreviousAdminKeys are earlier bootstrap keys still accepted (with
	// the admin role) during a rotation, each at least MinAdminKeyLen
	// characters. May be empty.
	PreviousAdminKeys []string
	// DisableBootstrap refuses AdminKey and PreviousAdminKeys (which may
	// then be empty): only admin keys and admin tokens authenticate.
	DisableBootstrap bool
	// Snapshot returns the current configuration; its AdminKeys
	// authenticate admin keys stored in the database. Nil accepts only the
	// bootstrap keys.
	Snapshot func() *llm.Snapshot
	// Tokens returns the current authenticator; issuers with admin
	// settings (llm.IssuerAdmin) authenticate admin API tokens through it.
	// Nil accepts no tokens.
	Tokens func() *auth.Authenticator
	// Now is the clock for admin keys' expiry. Nil means time.Now.
	Now func() time.Time
	// Metrics serves GET /metrics (behind auth). Nil means no /metrics route.
	Metrics http.Handler
	// Ready backs GET /readyz. Its error message is shown (with URL
	// credentials redacted), so it should name the failed dependency, e.g.
	// "store unreachable". Nil pings the store.
	Ready func(context.Context) error
	// UI serves the dashboard's static files at GET /ui and GET /ui/*. The
	// routes are public: the files hold no data, and every call the page
	// makes goes to /admin/* with the admin key. Nil means no /ui routes.
	UI http.Handler
	// Pprof, when true, serves Go's profiler at /debug/pprof/ (behind auth).
	Pprof bool
	// Health backs GET /admin/health (behind auth), rendered as
	// {"items": <result>}. Nil means no /admin/health route.
	Health func(context.Context) any
	// Quotas, when set, adds each subject's consumption ("quota") to GET
	// /admin/keys/{id}, /admin/owners/{name} and /admin/models/{id}. Lists
	// do not call it. May be nil.
	Quotas QuotaReporter
	// OnChange is called after each successful configuration write. May be nil.
	OnChange func()
	// Logger receives handler errors and panics. Nil discards.
	Logger *slog.Logger
	// UsageQueryTimeout bounds each read of /admin/usage, /admin/usage/summary
	// and /admin/requests; past it the answer is a 503. Default 30s.
	UsageQueryTimeout time.Duration
}

// New returns the admin API as an http.Handler.
func New(opts Options) (http.Handler, error) {
	return NewEngine(opts)
}

// NewEngine returns the admin API's gin engine, so tests can walk Routes().
func NewEngine(opts Options) (*gin.Engine, error) {
	if len(opts.AdminKey) < MinAdminKeyLen && !opts.DisableBootstrap {
		return nil, errors.New("admin: the admin key must be at least 32 characters")
	}
	for _, k := range opts.PreviousAdminKeys {
		if len(k) < MinAdminKeyLen {
			return nil, errors.New("admin: a previous admin key must be at least 32 characters")
		}
	}
	if opts.Store == nil {
		return nil, errors.New("admin: Options.Store is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{opts: opts, log: opts.Logger}
	if !opts.DisableBootstrap {
		for _, k := range append([]string{opts.AdminKey}, opts.PreviousAdminKeys...) {
			a.bootstrap = append(a.bootstrap, sha256.Sum256([]byte(k)))
		}
	}

	e := gin.New()
	// Redirects would answer before the auth middleware runs.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = false
	// Route on the escaped path so that a name holding a '/' (an owner
	// "team/ml", a model "meta-llama/Llama-3") is one :id, sent as %2F;
	// the parameter is unescaped.
	e.UseRawPath = true
	e.UnescapePathValues = true
	e.Use(a.recovery, a.auth, a.singleParams)
	e.NoRoute(func(c *gin.Context) {
		a.error(c, http.StatusNotFound, "not found", "invalid_request_error", "", "not_found")
	})

	// HEAD answers as GET without the body (net/http drops it): probes
	// that use HEAD got a 401.
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		e.Handle(m, "/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
		e.Handle(m, "/readyz", a.readyz)
	}
	if opts.Metrics != nil {
		e.GET("/metrics", gin.WrapH(opts.Metrics))
	}
	if opts.UI != nil {
		e.GET("/ui", gin.WrapH(opts.UI))
		e.GET("/ui/*filepath", gin.WrapH(opts.UI))
	}

	g := e.Group("/admin")
	a.mountResources(g)

	a.mountAdminKeys(g)
	g.GET("/whoami", a.whoami)
	g.GET("/usage", a.usage)
	g.GET("/usage/summary", a.usageSummary)
	g.GET("/requests", a.listRequests)
	if opts.Health != nil {
		g.GET("/health", a.health)
	}
	if opts.Pprof {
		e.GET("/debug/pprof/*name", gin.WrapF(pprofHandler))
	}
	return e, nil
}

// api holds the handlers' dependencies.
type api struct {
	opts Options
	// bootstrap are the SHA-256 of Options.AdminKey, then of each of
	// Options.PreviousAdminKeys.
	bootstrap [][sha256.Size]byte
	log       *slog.Logger
}

func (a *api) now() time.Time {
	if a.opts.Now != nil {
		return a.opts.Now()
	}
	return time.Now()
}

// publicRoute reports whether the matched route needs no admin key: the
// health probes (GET or HEAD) and the dashboard's static files (GET).
func publicRoute(c *gin.Context) bool {
	switch c.Request.Method {
	case http.MethodGet:
		switch c.FullPath() {
		case "/healthz", "/readyz", "/ui", "/ui/*filepath":
			return true
		}
	case http.MethodHead:
		switch c.FullPath() {
		case "/healthz", "/readyz":
			return true
		}
	}
	return false
}

// singleParams refuses a query that names a parameter twice
// (?model=a&model=b): which one the caller meant is unclear, as with two
// credentials, and the handlers would silently read the first. It runs for
// every route. A query that does not parse (a ';' separator, a bad %
// escape) is refused too: the handlers would silently drop the pairs that
// do not parse (?group_by=model;group_by=key read as no group_by at all).
func (a *api) singleParams(c *gin.Context) {
	q, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		a.error(c, http.StatusBadRequest, "the query string is malformed (a ';' separator or an invalid % escape)", "invalid_request_error", "", "invalid_value")
		c.Abort()
		return
	}
	for name, vs := range q {
		if len(vs) > 1 {
			if len(name) > 64 {
				name = name[:64]
			}
			a.error(c, http.StatusBadRequest, "a query parameter is given more than once", "invalid_request_error", name, "invalid_value")
			c.Abort()
			return
		}
	}
	c.Next()
}

// recovery turns a panic into a JSON 500 without details.
func (a *api) recovery(c *gin.Context) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if r == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
			panic(r)
		}
		a.log.Error("admin: panic in handler", "method", c.Request.Method, "route", c.FullPath(), "stack", string(debug.Stack()))
		if !c.Writer.Written() {
			a.error(c, http.StatusInternalServerError, "internal error", "internal_error", "", "internal_error")
		}
		c.Abort()
	}()
	c.Next()
}

func (a *api) changed() {
	if a.opts.OnChange != nil {
		a.opts.OnChange()
	}
}

// pprofHandler serves net/http/pprof's pages by name.
func pprofHandler(w http.ResponseWriter, r *http.Request) {
	switch name := strings.TrimPrefix(r.URL.Path, "/debug/pprof/"); name {
	case "", "/":
		pprof.Index(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
}
