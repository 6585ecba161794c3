// Command sluice is the Sluice AI gateway.
//
//	sluice serve     run the gateway (proxy :9080, admin 127.0.0.1:9180)
//	sluice migrate   apply database migrations and exit
//	sluice version   print the version
//
// SIGINT and SIGTERM shut down gracefully (in-flight requests, streams
// included, are drained and usage is flushed); SIGHUP reloads the
// configuration from the database.
//
// Settings come from flags or the environment: SLUICE_LISTEN,
// SLUICE_TLS_LISTEN, SLUICE_TLS_CERT, SLUICE_TLS_KEY, SLUICE_ADMIN_LISTEN,
// SLUICE_ADMIN_KEY, SLUICE_ADMIN_KEY_PREVIOUS, SLUICE_ADMIN_KEY_DISABLED, DATABASE_URL, SLUICE_DATA_DIR, SLUICE_ENCRYPTION_KEY,
// REDIS_URL (alias REDIS_CONN_STRING), SLUICE_ACCESS_LOG, SLUICE_ACCESS_LOG_BODIES,
// SLUICE_LOG_LEVEL, SLUICE_MAX_BODY_BYTES, SLUICE_MAX_BUFFERED_BYTES, SLUICE_SHUTDOWN_TIMEOUT,
// SLUICE_CORS_ORIGINS, SLUICE_PPROF, SLUICE_MAX_INFLIGHT, SLUICE_USAGE_RETENTION.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-ai/sluice/server"
)

// Set by -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "sluice %s (%s)\n", version, commit)
		return 0
	case "serve", "migrate":
	case "create-admin-key":
		if len(args) < 2 || args[0] == "" || args[0][0] == '-' || args[1] == "" || args[1][0] == '-' {
			fmt.Fprintln(stderr, "usage: sluice create-admin-key <name> <admin|viewer> [flags]")
			return 2
		}
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
	var keyName, keyRole string
	if cmd == "create-admin-key" {
		keyName, keyRole, args = args[0], args[1], args[2:]
	}
	cfg, level, err := parseConfig(cmd, args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cmd == "migrate" {
		return migrate(ctx, cfg, log, stderr)
	}
	if cmd == "create-admin-key" {
		k, secret, err := server.CreateAdminKey(ctx, cfg, log, keyName, keyRole)
		if err != nil {
			fmt.Fprintf(stderr, "sluice: %v\n", err)
			return 1
		}
		// The secret goes to stdout only, once; the id to stderr.
		fmt.Fprintf(stderr, "created admin key %s (%s, role %s); it is shown once:\n", k.ID, k.Prefix, k.Role)
		fmt.Fprintln(stdout, secret)
		return 0
	}
	server.ReleaseMode()
	srv, err := server.New(ctx, cfg, log, server.Version{Version: version, Commit: commit})
	if err != nil {
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		return 1
	}
	if k := srv.GeneratedAdminKey(); k != "" {
		// Printed once, to the terminal only; it is never logged.
		fmt.Fprintf(stderr, "admin key: %s\n(no SLUICE_ADMIN_KEY was set: this key was generated for this run only; set SLUICE_ADMIN_KEY to keep one)\n", k)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := srv.Reload(ctx); err != nil {
					log.Error("reload on SIGHUP failed", "err", err)
				} else {
					log.Info("configuration reloaded on SIGHUP")
				}
			}
		}
	}()
	if err := srv.Run(ctx); err != nil {
		log.Error("serve failed", "err", err)
		return 1
	}
	return 0
}

func migrate(ctx context.Context, cfg server.Config, log *slog.Logger, stderr io.Writer) int {
	if err := server.Migrate(ctx, cfg, log); err != nil {
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		return 1
	}
	fmt.Fprintln(stderr, "migrations applied")
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: sluice <command> [flags]

commands:
  serve     run the gateway (default)
  migrate   apply database migrations and exit
  create-admin-key <name> <admin|viewer>
            create an admin key in the database and print it (break-glass)
  version   print the version

run "sluice serve -h" for flags; every flag has an environment variable.
`)
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// envParser reads typed settings from the environment and remembers the
// first malformed one, so serve refuses to start rather than fall back to a
// default the operator did not choose.
type envParser struct{ err error }

func (p *envParser) fail(name, v, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("%s=%q is not valid: want %s", name, v, want)
	}
}

// int64 reads a whole number of at least min; unset or empty means def.
func (p *envParser) int64(name string, def, min int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min {
		p.fail(name, v, "a whole number of at least "+strconv.FormatInt(min, 10))
		return def
	}
	return n
}

// duration reads a positive Go duration such as 30s or 2m.
func (p *envParser) duration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(name, v, "a positive duration such as 30s or 2m")
		return def
	}
	return d
}

// bool reads true/false/1/0.
func (p *envParser) bool(name string) bool {
	switch v := os.Getenv(name); v {
	case "true", "1":
		return true
	case "", "false", "0":
		return false
	default:
		p.fail(name, v, "true, false, 1 or 0")
		return false
	}
}

func parseConfig(cmd string, args []string, stderr io.Writer) (server.Config, slog.Level, error) {
	fs := flag.NewFlagSet("sluice "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c server.Config
	var ep envParser
	fs.StringVar(&c.Listen, "listen", env("SLUICE_LISTEN", ":9080"), "proxy listen address (SLUICE_LISTEN)")
	fs.StringVar(&c.TLSListen, "tls-listen", env("SLUICE_TLS_LISTEN", ":9443"), "HTTPS proxy listen address (SLUICE_TLS_LISTEN)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("SLUICE_TLS_CERT", ""), "TLS certificate file (SLUICE_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("SLUICE_TLS_KEY", ""), "TLS key file (SLUICE_TLS_KEY)")
	fs.StringVar(&c.AdminListen, "admin-listen", env("SLUICE_ADMIN_LISTEN", "127.0.0.1:9180"), "admin listen address (SLUICE_ADMIN_LISTEN)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", ""), "database URL; empty = SQLite in the data dir (DATABASE_URL)")
	fs.StringVar(&c.DataDir, "data-dir", env("SLUICE_DATA_DIR", "./data"), "data directory (SLUICE_DATA_DIR)")
	fs.StringVar(&c.RedisURL, "redis-url", env("REDIS_URL", env("REDIS_CONN_STRING", "")), "Redis URL (REDIS_URL)")
	fs.StringVar(&c.AccessLog, "access-log", env("SLUICE_ACCESS_LOG", "stdout"), "access log: stdout, stderr, off or a file (SLUICE_ACCESS_LOG)")
	fs.BoolVar(&c.AccessLogBodies, "access-log-bodies", ep.bool("SLUICE_ACCESS_LOG_BODIES"), "add request bodies (prompts) to the access log (SLUICE_ACCESS_LOG_BODIES=true)")
	fs.BoolVar(&c.UpstreamDenyPrivate, "upstream-deny-private", ep.bool("SLUICE_UPSTREAM_DENY_PRIVATE"), "refuse provider base URLs at private, loopback, link-local or other non-public addresses, checked again at connect time (SLUICE_UPSTREAM_DENY_PRIVATE=true)")
	fs.StringVar(&c.IssuersFile, "issuers-file", env("SLUICE_ISSUERS_FILE", ""), "JSON file of JWT/OIDC issuers {\"issuers\":[...]} created or replaced by name at start (SLUICE_ISSUERS_FILE)")
	fs.BoolVar(&c.Pprof, "pprof", ep.bool("SLUICE_PPROF"), "serve /debug/pprof/ on the admin listener, behind admin auth (SLUICE_PPROF=true)")
	retention := fs.String("usage-retention", env("SLUICE_USAGE_RETENTION", ""), "delete usage records older than this, e.g. 90d or 720h; empty keeps them (SLUICE_USAGE_RETENTION)")
	cors := fs.String("cors-origins", env("SLUICE_CORS_ORIGINS", ""), "comma-separated browser origins allowed to call the proxy, or * (SLUICE_CORS_ORIGINS)")
	fs.Int64Var(&c.MaxInFlight, "max-inflight", ep.int64("SLUICE_MAX_INFLIGHT", 0, 0), "concurrent proxy requests before new ones get 503; 0 = what the open-file limit allows (SLUICE_MAX_INFLIGHT)")
	maxBody := fs.Int64("max-body-bytes", ep.int64("SLUICE_MAX_BODY_BYTES", 10<<20, 1), "request body limit (SLUICE_MAX_BODY_BYTES)")
	maxBuffered := fs.Int64("max-buffered-bytes", ep.int64("SLUICE_MAX_BUFFERED_BYTES", 0, 1), "request-body bytes all requests may hold at once, beyond which bodies get 503; unset = 64 × max body bytes, at least 1 GiB (SLUICE_MAX_BUFFERED_BYTES)")
	fs.DurationVar(&c.QuotaTimeout, "quota-timeout", ep.duration("SLUICE_QUOTA_TIMEOUT", 250*time.Millisecond), "bound on each quota check against Redis; past it each limit's fail_mode decides (SLUICE_QUOTA_TIMEOUT)")
	fs.IntVar(&c.QuotaDefaultOutputTokens, "quota-default-output-tokens", int(ep.int64("SLUICE_QUOTA_DEFAULT_OUTPUT_TOKENS", 4096, 1)), "completion tokens reserved against token and money limits for a request without max_tokens (SLUICE_QUOTA_DEFAULT_OUTPUT_TOKENS)")
	shutdown := fs.Duration("shutdown-timeout", ep.duration("SLUICE_SHUTDOWN_TIMEOUT", 30*time.Second), "the whole graceful shutdown: drain, then flush usage (SLUICE_SHUTDOWN_TIMEOUT)")
	lvl := fs.String("log-level", env("SLUICE_LOG_LEVEL", "info"), "debug, info, warn or error (SLUICE_LOG_LEVEL)")
	// Secrets and their switch come only from the environment.
	c.AdminKeyDisabled = ep.bool("SLUICE_ADMIN_KEY_DISABLED")
	if ep.err != nil {
		return c, 0, ep.err
	}
	var err error
	if err = fs.Parse(args); err != nil {
		return c, 0, err
	}
	if fs.NArg() > 0 {
		return c, 0, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// Secrets come only from the environment, never from flags (which show
	// up in process listings).
	c.AdminKey = os.Getenv("SLUICE_ADMIN_KEY")
	for _, k := range strings.Split(os.Getenv("SLUICE_ADMIN_KEY_PREVIOUS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			c.PreviousAdminKeys = append(c.PreviousAdminKeys, k)
		}
	}
	c.EncryptionKey = os.Getenv("SLUICE_ENCRYPTION_KEY")
	c.MaxBodyBytes = *maxBody
	c.MaxBufferedBytes = *maxBuffered
	bufferedSet := os.Getenv("SLUICE_MAX_BUFFERED_BYTES") != ""
	fs.Visit(func(f *flag.Flag) { bufferedSet = bufferedSet || f.Name == "max-buffered-bytes" })
	if c.UsageRetention, err = server.ParseRetention(*retention); err != nil {
		return c, 0, err
	}
	for _, o := range strings.Split(*cors, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.CORSOrigins = append(c.CORSOrigins, o)
		}
	}
	c.ShutdownTimeout = *shutdown
	// Zero or negative would silently mean the default (or nonsense).
	switch {
	case c.MaxBodyBytes < 1:
		return c, 0, fmt.Errorf("max body bytes %d must be positive", c.MaxBodyBytes)
	case bufferedSet && c.MaxBufferedBytes < 1:
		return c, 0, fmt.Errorf("max buffered bytes %d must be positive", c.MaxBufferedBytes)
	case c.ShutdownTimeout <= 0:
		return c, 0, fmt.Errorf("shutdown timeout %s must be positive", c.ShutdownTimeout)
	case c.QuotaTimeout <= 0:
		return c, 0, fmt.Errorf("quota timeout %s must be positive", c.QuotaTimeout)
	case c.MaxInFlight < 0:
		return c, 0, fmt.Errorf("max in-flight %d must be 0 (from the open-file limit) or more", c.MaxInFlight)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*lvl)); err != nil {
		return c, 0, fmt.Errorf("invalid log level %q", *lvl)
	}
	return c, level, nil
}
