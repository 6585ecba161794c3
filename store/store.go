package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/migrations"
)

// Dialects returned by (*Store).Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// DefaultDataDir is where the SQLite database and the generated encryption
// key live when Options.DataDir is empty.
const DefaultDataDir = "./data"

// Options configures Open.
type Options struct {
	// URL selects the database. "" means SQLite at DataDir/sluice.db;
	// "postgres://…" or "postgresql://…" means PostgreSQL; "sqlite:///path"
	// and "file:…" name an SQLite file.
	URL string
	// DataDir holds the default SQLite file and encryption.key. Default ./data.
	DataDir string
	// EncryptionKey encrypts provider API keys and secrets at rest: 64 hex characters or
	// the base64 of 32 bytes (usually SLUICE_ENCRYPTION_KEY). When empty the
	// key is read from DataDir/encryption.key, or generated there (mode
	// 0600) with a warning.
	EncryptionKey string
	// Logger receives warnings. Nil discards them.
	Logger *slog.Logger
	// ValidateProvider checks a provider being written as its family
	// will build it (type, base_url, headers, options, secrets) and may
	// normalise it in place (a default base URL, canonical options). server
	// injects the providers package's validator, so store lists no provider
	// types. Nil leaves only the storage-level checks (name, type syntax,
	// sizes, timeouts); the registry still refuses a bad provider at load.
	ValidateProvider func(p *llm.Provider) error
}

// Store is the persistence layer. It is safe for concurrent use.
type Store struct {
	db      *sql.DB // writes; also reads on PostgreSQL
	rdb     *sql.DB // reads
	dialect string
	pgDSN   string // for the LISTEN connection; never logged
	aead    cipher.AEAD
	log     *slog.Logger

	validateHook func(p *llm.Provider) error

	usageStmts stmtCache // prepared usage INSERTs by row count
}

// Open connects to the database described by opts. It does not migrate:
// call Migrate.
func Open(ctx context.Context, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.DataDir == "" {
		opts.DataDir = DefaultDataDir
	}
	dialect, dsn, err := parseURL(opts.URL, opts.DataDir)
	if err != nil {
		return nil, err
	}
	aead, err := loadKey(opts.EncryptionKey, opts.DataDir, log)
	if err != nil {
		return nil, err
	}
	if opts.EncryptionKey == "" && dialect == DialectPostgres {
		log.Warn("SLUICE_ENCRYPTION_KEY is not set while sharing a PostgreSQL database: every replica must use the same encryption key, or replicas cannot read each other's provider API keys")
	}
	s := &Store{dialect: dialect, aead: aead, log: log, validateHook: opts.ValidateProvider}
	switch dialect {
	case DialectSQLite:
		err = s.openSQLite(ctx, dsn)
	default:
		err = s.openPostgres(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// parseURL returns the dialect and driver DSN for raw. Errors never echo raw,
// which may contain a password.
func parseURL(raw, dataDir string) (dialect, dsn string, err error) {
	switch {
	case raw == "":
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return "", "", fmt.Errorf("store: create data dir: %w", err)
		}
		return DialectSQLite, sqliteDSN(filepath.Join(dataDir, "sluice.db"), ""), nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return DialectPostgres, raw, nil
	case strings.HasPrefix(raw, "sqlite://"):
		rest := strings.TrimPrefix(raw, "sqlite://")
		path, query, _ := strings.Cut(rest, "?")
		if path == "" {
			return "", "", errors.New("store: sqlite URL has no path")
		}
		return DialectSQLite, sqliteDSN(path, query), nil
	case strings.HasPrefix(raw, "file:"):
		path, query, _ := strings.Cut(strings.TrimPrefix(raw, "file:"), "?")
		return DialectSQLite, sqliteDSN(path, query), nil
	}
	return "", "", errors.New("store: unsupported database URL (want postgres://, postgresql://, sqlite:// or file:…)")
}

// sqliteDSN builds a modernc DSN with Sluice's pragmas, keeping any the
// caller set.
func sqliteDSN(path, query string) string {
	q, err := url.ParseQuery(query)
	if err != nil {
		q = url.Values{}
	}
	pragmas := q["_pragma"]
	have := func(name string) bool {
		for _, p := range pragmas {
			if strings.HasPrefix(strings.ToLower(p), name+"(") || strings.HasPrefix(strings.ToLower(p), name+"=") {
				return true
			}
		}
		return false
	}
	// busy_timeout first so the others wait for locks instead of failing.
	var pre []string
	for _, p := range []struct{ name, value string }{
		{"busy_timeout", "busy_timeout(10000)"},
		{"journal_mode", "journal_mode(WAL)"},
		{"foreign_keys", "foreign_keys(1)"},
		{"synchronous", "synchronous(NORMAL)"},
	} {
		if !have(p.name) {
			pre = append(pre, p.value)
		}
	}
	q["_pragma"] = append(pre, pragmas...)
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

func (s *Store) openSQLite(ctx context.Context, dsn string) error {
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	// One writer connection: SQLite serialises writers anyway, and a single
	// connection means concurrent admin writes and usage batches queue in Go
	// instead of failing with SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	// Readers use deferred transactions so a read-only snapshot never takes
	// the write lock.
	r, err := sql.Open("sqlite", strings.Replace(dsn, "_txlock=immediate", "_txlock=deferred", 1))
	if err != nil {
		w.Close()
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	// WAL lets readers run beside the writer.
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s.db, s.rdb = w, r
	return nil
}

func (s *Store) openPostgres(ctx context.Context, dsn string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return errors.New("store: open postgres: invalid database URL")
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return fmt.Errorf("store: connect to postgres: %w", err)
	}
	s.db, s.rdb, s.pgDSN = db, db, dsn
	return nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.dialect, err)
	}
	return nil
}

// Close closes the database connections.
func (s *Store) Close() error {
	err := errors.Join(s.usageStmts.close(), s.db.Close())
	if s.rdb != s.db {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}

// Migrate applies any pending embedded migrations. It is idempotent and, on
// PostgreSQL, holds an advisory lock so replicas starting together take
// turns.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations.FS, s.dialect)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	gd := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.dialect == DialectPostgres {
		gd = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("store: migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, s.db, sub, opts...)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, r := range results {
		s.log.Info("applied migration", "dialect", s.dialect, "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}
