package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-ai/sluice/admin"
	"github.com/sluice-ai/sluice/auth"
	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/quota"
	"github.com/sluice-ai/sluice/router"
	"github.com/sluice-ai/sluice/state"
	"github.com/sluice-ai/sluice/store"
	"github.com/sluice-ai/sluice/usage"
	"github.com/sluice-ai/sluice/web"
)

// Version is the build version, set by cmd/sluice.
type Version struct{ Version, Commit string }

// Server is a running Sluice: the proxy and admin handlers and everything
// behind them.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    *store.Store
	state    atomic.Pointer[state.State]
	reloadMu sync.Mutex
	recorder *usage.Recorder
	access   *router.AccessLog
	accessF  io.Closer
	// rdb is the one Redis client (nil without REDIS_URL), shared by all
	// that need Redis: the config fan-out today, quotas and shared balancer
	// state when they are wired. Closed last.
	rdb    redis.UniversalClient
	fanout *fanout
	// limiter admits requests against their quotas; quotaRedis is its
	// store when Redis is configured (nil otherwise).
	limiter    *quota.Limiter
	quotaRedis *quota.Redis
	proxy      *router.Handler
	admin      http.Handler
	balancer   *balancer.Balancer
	// probeMetrics counts the active probes of every configuration.
	probeMetrics *state.ProbeMetrics
	// healthSync shares the balancer's health transitions with the other
	// replicas through Redis; nil without Redis. replica names this
	// process in them.
	healthSync *quota.HealthSync
	replica    string

	// tlsConfig serves the HTTPS proxy listener; nil without TLSCert. The
	// certificate is loaded once, in New.
	tlsConfig *tls.Config

	readiness readiness

	generatedKey string
}

// New builds a Server: it opens and migrates the store and loads the
// configuration. Nothing listens until Run.
func New(ctx context.Context, cfg Config, log *slog.Logger, v Version) (_ *Server, err error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		s.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if cfg.AdminKey == "" && !cfg.AdminKeyDisabled {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		s.generatedKey = hex.EncodeToString(b[:])
		s.cfg.AdminKey = s.generatedKey
	}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	s.store, err = store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, EncryptionKey: cfg.EncryptionKey, Logger: log,
		ValidateProvider: providers.Options{DenyPrivate: cfg.UpstreamDenyPrivate}.Validate})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if cfg.IssuersFile != "" {
		if err := applyIssuersFile(ctx, s.store, cfg.IssuersFile, log); err != nil {
			return nil, err
		}
	}
	if cfg.RedisURL != "" {
		if s.rdb, err = openRedis(ctx, cfg.RedisURL, log); err != nil {
			return nil, err
		}
		s.fanout = newFanout(s.rdb, log)
	}
	s.replica = newReplicaID()
	s.balancer = balancer.New(s.balancerOptions())
	s.probeMetrics = state.NewProbeMetrics(nil)
	s.state.Store(&state.State{})
	if err := s.reload(ctx, true); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sluice_build_info",
		Help:        "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": v.Version, "commit": v.Commit},
	})
	info.Set(1)
	reg.MustRegister(info, s.balancer.Collector(s.deploymentNames), s.probeMetrics)

	// The writer drains when Serve's background context ends, after the
	// HTTP drain: its budget is the flush part of the shutdown plan.
	_, flush := shutdownPlan(cfg.ShutdownTimeout)
	s.recorder = usage.NewRecorder(s.store, usage.Options{Logger: log, Registerer: reg, DrainTimeout: flush})
	if err := s.openAccessLog(); err != nil {
		return nil, err
	}
	est := quota.NewEstimator()
	go est.Warm()
	s.limiter = s.newLimiter(reg)
	reg.MustRegister(headroomCollector(s.limiter, s.deploymentNames))
	if s.healthSync != nil {
		reg.MustRegister(newHealthSyncCollector(s.healthSync))
	}
	s.proxy = router.New(router.Options{
		State:        s.state.Load,
		Balancer:     s.balancer,
		Usage:        s.recorder,
		Estimator:    est,
		Admitter:     admitter{s.limiter},
		Affinity:     s.newAffinity(),
		Metrics:      router.NewMetrics(reg),
		AccessLog:    s.access,
		LogBodies:    cfg.AccessLogBodies,
		CORSOrigins:  cfg.CORSOrigins,
		MaxInFlight:  effectiveMaxInFlight(cfg.MaxInFlight),
		Logger:       log,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Ready:        s.ready,

		MaxBufferedBytes: cfg.MaxBufferedBytes,

		BodyReadTimeout: cfg.BodyReadTimeout,
		WriteTimeout:    cfg.WriteTimeout,
	})
	s.admin, err = admin.New(admin.Options{
		Store:    s.store,
		AdminKey: s.cfg.AdminKey,
		// A rotation's previous keys, and the database's admin keys
		// through the snapshot every replica follows.
		PreviousAdminKeys: s.cfg.PreviousAdminKeys,
		DisableBootstrap:  s.cfg.AdminKeyDisabled,
		Snapshot:          func() *llm.Snapshot { return s.state.Load().Snapshot },
		Tokens:            func() *auth.Authenticator { return s.state.Load().Auth },
		Metrics:           promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Ready:             s.ready,
		OnChange:          s.configChanged,
		Pprof:             cfg.Pprof,
		Logger:            log,
		UI:                web.Handler(),
		Health:            s.health,
		Quotas:            quotaReporter{s},
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ReleaseMode sets the process-wide defaults of the HTTP frameworks for a
// production process (gin's release mode, unless GIN_MODE is set). The
// program calls it once at start; New does not.
func ReleaseMode() { router.ReleaseMode() }

// GeneratedAdminKey returns the admin key New generated because none was
// configured, or "".
func (s *Server) GeneratedAdminKey() string { return s.generatedKey }

// reload loads the snapshot and swaps it in when its version changed (or
// always, with force).
func (s *Server) reload(ctx context.Context, force bool) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.store == nil {
		return errors.New("server is shut down")
	}
	cur := s.state.Load()
	if !force && cur.Snapshot != nil {
		v, err := s.store.Version(ctx)
		if err == nil && v == cur.Snapshot.Version {
			return nil
		}
	}
	snap, err := s.store.LoadSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("load configuration: %w", err)
	}
	next, retire, errs := state.Build(cur, snap, state.Options{Balancer: s.balancer, Providers: providers.Options{DenyPrivate: s.cfg.UpstreamDenyPrivate},
		Auth: auth.Options{Logger: s.log}, ProbeMetrics: s.probeMetrics})
	for _, e := range errs {
		s.log.Warn("configuration problem (the provider or issuer is skipped, or built without what the message names)", "err", e)
	}
	s.state.Store(next)
	// What the old state used and the new one does not (idle connections
	// of removed providers, health of deleted deployments) goes only now:
	// requests that loaded the old state before the swap still finish on it.
	retire()
	if s.limiter != nil {
		s.limiter.RetainHeadroom(s.deploymentIDs())
	}
	s.log.Debug("configuration loaded", "version", snap.Version, "providers", len(snap.Providers), "models", len(snap.Models), "keys", len(snap.Keys))
	return nil
}

// Reload re-reads the configuration from the store now (cmd/sluice calls
// it on SIGHUP). Replicas also reload on their own; this is for operators
// who changed the database by hand.
func (s *Server) Reload(ctx context.Context) error { return s.reload(ctx, true) }

// configChanged runs after an admin write on this replica: reload now and
// tell the other replicas.
func (s *Server) configChanged() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.reload(ctx, true); err != nil {
		s.log.Error("reload after admin change failed", "err", err)
	}
	if s.fanout != nil {
		s.fanout.publish(ctx, s.state.Load().Snapshot.Version)
	}
}

// Run serves until ctx ends, then shuts down gracefully within
// ShutdownTimeout: stop accepting, drain in-flight requests (streams
// included), flush usage records and the access log, close the store
// (shutdownPlan splits the time).
func (s *Server) Run(ctx context.Context) error {
	proxyLn, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.closeAll()
		return fmt.Errorf("proxy listener: %w", err)
	}
	adminLn, err := net.Listen("tcp", s.cfg.AdminListen)
	if err != nil {
		proxyLn.Close()
		s.closeAll()
		return fmt.Errorf("admin listener: %w", err)
	}
	return s.Serve(ctx, proxyLn, adminLn)
}

// Serve is Run on listeners the caller opened (tests use port 0). It owns
// them: they are closed when it returns, whatever the outcome.
func (s *Server) Serve(ctx context.Context, proxyLn, adminLn net.Listener) error {
	var tlsLn net.Listener
	if s.tlsConfig != nil {
		var err error
		if tlsLn, err = net.Listen("tcp", s.cfg.TLSListen); err != nil {
			_ = proxyLn.Close()
			_ = adminLn.Close()
			s.closeAll()
			return fmt.Errorf("TLS listener: %w", err)
		}
	}
	// One budget, ShutdownTimeout, bounds the whole shutdown once it
	// starts: draining first, then flushing (see shutdownPlan).
	flushBy := time.Time{}
	defer func() { s.closeBy(flushBy) }()
	bg, stopBg := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// The usage writer outlives the HTTP drain below (stopBg comes after
	// it), so the last requests' records are written too.
	rec := s.recorder
	wg.Go(func() { rec.Run(bg) })
	wg.Go(func() {
		s.store.Watch(bg, s.cfg.PollInterval, func(int64) {
			if err := s.reload(bg, false); err != nil && bg.Err() == nil {
				s.log.Warn("configuration reload failed", "err", err)
			}
		})
	})
	if s.healthSync != nil {
		wg.Go(func() { s.healthSync.Run(bg) })
	}
	if s.fanout != nil {
		wg.Go(func() {
			s.fanout.subscribe(bg, func() {
				if err := s.reload(bg, false); err != nil && bg.Err() == nil {
					s.log.Warn("configuration reload failed", "err", err)
				}
			})
		})
	}
	proxyH := boundFlush(boundBody(s.proxy, s.cfg.BodyReadTimeout), s.cfg.WriteTimeout)
	adminH := boundBody(s.admin, s.cfg.BodyReadTimeout)
	proxySrv, adminSrv := newHTTPServer(proxyH, s.log), newHTTPServer(adminH, s.log)
	adminSrv.WriteTimeout = 4 * s.cfg.WriteTimeout
	if s.cfg.UsageRetention > 0 {
		wg.Go(func() { s.pruneLoop(bg) })
	}
	wg.Go(func() { s.heartbeatLoop(bg) })
	servers := []*http.Server{proxySrv, adminSrv}
	errc := make(chan error, 3)
	if tlsLn != nil {
		tlsSrv := newHTTPServer(proxyH, s.log)
		tlsSrv.TLSConfig = s.tlsConfig
		servers = append(servers, tlsSrv)
		go func() { errc <- tlsSrv.ServeTLS(tlsLn, "", "") }()
	}
	go func() { errc <- proxySrv.Serve(proxyLn) }()
	go func() { errc <- adminSrv.Serve(adminLn) }()
	s.log.Info("sluice serving", "proxy", proxyLn.Addr().String(), "admin", adminLn.Addr().String(), "database", s.store.Dialect(), "redis", s.fanout != nil)
	logFDLimit(s.log, s.cfg.MaxInFlight)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	}
	drain, flush := shutdownPlan(s.cfg.ShutdownTimeout)
	s.log.Info("shutting down: draining in-flight requests", "timeout", drain, "then_flush", flush)
	start := time.Now()
	flushBy = start.Add(drain + flush)
	sctx, cancel := context.WithDeadline(context.Background(), start.Add(drain))
	defer cancel()
	var swg sync.WaitGroup
	for _, srv := range servers {
		swg.Go(func() {
			if err := srv.Shutdown(sctx); err != nil {
				s.log.Warn("forced close of remaining connections", "err", err)
				_ = srv.Close()
			}
		})
	}
	swg.Wait()
	stopBg()
	wg.Wait()
	return runErr
}

// shutdownPlan splits the shutdown budget: in-flight requests (streams
// included) drain for the first part; the last quarter, at most 10 s, is
// kept for flushing usage records and the access log, so the whole
// shutdown ends within total (an orchestrator's grace period can equal it).
func shutdownPlan(total time.Duration) (drain, flush time.Duration) {
	flush = min(total/4, 10*time.Second)
	return total - flush, flush
}

// closeAll flushes usage and logs and closes the store, within
// ShutdownTimeout. It is idempotent.
func (s *Server) closeAll() { s.closeBy(time.Time{}) }

// closeBy is closeAll with flushing bounded by deadline (zero: ShutdownTimeout from now).
func (s *Server) closeBy(deadline time.Time) {
	if deadline.IsZero() {
		deadline = time.Now().Add(s.cfg.ShutdownTimeout)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if s.limiter != nil {
		// Settlements still queued reach the store before it closes.
		s.limiter.Close(ctx)
		s.limiter = nil
	}
	if s.recorder != nil {
		if err := s.recorder.Close(ctx); err != nil {
			s.log.Error("usage flush incomplete", "err", err)
		}
		s.recorder = nil
	}
	if s.access != nil {
		_ = s.access.Close(ctx)
		s.access = nil
	}
	if s.accessF != nil {
		_ = s.accessF.Close()
		s.accessF = nil
	}
	s.fanout = nil
	if s.rdb != nil {
		_ = s.rdb.Close()
		s.rdb = nil
	}
	s.reloadMu.Lock() // no reload may run on a closed store
	if s.store != nil {
		_ = s.store.Close()
		s.store = nil
	}
	// The probe loops of the configuration in use stop with it.
	s.state.Load().Close()
	s.reloadMu.Unlock()
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout on the proxy: it would cut long streams. Slow
		// readers are bounded per write by the router and boundFlush.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
