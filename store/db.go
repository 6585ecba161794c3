package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// now returns the current time as stored: UTC, millisecond precision.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// tv converts t to the dialect's column value: unix milliseconds for SQLite,
// a UTC time for PostgreSQL.
func (s *Store) tv(t time.Time) any {
	if s.dialect == DialectSQLite {
		return t.UnixMilli()
	}
	return t.UTC().Truncate(time.Millisecond)
}

// tvp is tv for a nullable time.
func (s *Store) tvp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.tv(*t)
}

// dbTime scans either dialect's timestamp column.
type dbTime struct {
	T     time.Time
	Valid bool
}

// Scan implements sql.Scanner.
func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		d.T, d.Valid = time.Time{}, false
	case int64:
		d.T, d.Valid = time.UnixMilli(v).UTC(), true
	case float64:
		d.T, d.Valid = time.UnixMilli(int64(v)).UTC(), true
	case time.Time:
		d.T, d.Valid = v.UTC(), true
	case []byte:
		return d.Scan(string(v))
	case string:
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			d.T, d.Valid = time.UnixMilli(ms).UTC(), true
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("store: bad timestamp %q", v)
		}
		d.T, d.Valid = t.UTC(), true
	default:
		return fmt.Errorf("store: cannot scan %T as timestamp", src)
	}
	return nil
}

// ptr returns a pointer to the time, or nil when not valid.
func (d dbTime) ptr() *time.Time {
	if !d.Valid {
		return nil
	}
	t := d.T
	return &t
}

// newID returns a random id with a type prefix, e.g. "prov_1f0c…".
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return prefix + hex.EncodeToString(b)
}

// isUniqueViolation reports whether err is a unique-constraint failure.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// tx runs fn in a write transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// configTx runs fn in a write transaction that first bumps the
// configuration version (which also serialises configuration writes) and
// passes the new version to fn: every row fn writes gets it as its revision.
// On PostgreSQL listeners are notified on commit.
func (s *Store) configTx(ctx context.Context, fn func(tx *sql.Tx, rev int64) error) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var v int64
		if err := tx.QueryRowContext(ctx,
			`UPDATE config_version SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&v); err != nil {
			return fmt.Errorf("store: bump config version: %w", err)
		}
		if err := fn(tx, v); err != nil {
			return err
		}
		if s.dialect == DialectPostgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, strconv.FormatInt(v, 10)); err != nil {
				return fmt.Errorf("store: notify: %w", err)
			}
		}
		return nil
	})
}

// Version returns the configuration version, which increases with every
// configuration write.
func (s *Store) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT version FROM config_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read config version: %w", err)
	}
	return v, nil
}

// Page selects one page of a list.
type Page struct {
	// Page is 1-based. Values below 1 mean 1.
	Page int
	// PageSize defaults to 50 and is capped at 500.
	PageSize int
}

// Page size limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Normalize returns p with defaults and limits applied.
func (p Page) Normalize() Page {
	if p.Page < 1 {
		p.Page = 1
	}
	if p.PageSize <= 0 {
		p.PageSize = DefaultPageSize
	}
	if p.PageSize > MaxPageSize {
		p.PageSize = MaxPageSize
	}
	return p
}

func (p Page) offset() int { return (p.Page - 1) * p.PageSize }

// count returns the number of rows of table.
// listPage reads one page of table's rows (columns cols, in order), each
// scanned by scan and shown by view, and the table's row count; what names
// the resource in errors. table, cols and order are the store's constants,
// never client input.
func listPage[R, T any](ctx context.Context, s *Store, p Page, table, cols, order, what string,
	scan func(rowScanner) (R, error), view func(R) T) ([]T, int, error) {
	p = p.Normalize()
	total, err := s.count(ctx, table)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+cols+` FROM `+table+` ORDER BY `+order+` LIMIT $1 OFFSET $2`,
		p.PageSize, p.offset())
	if err != nil {
		return nil, 0, fmt.Errorf("store: list %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("store: list %s: %w", what, err)
		}
		out = append(out, view(r))
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: list %s: %w", what, err)
	}
	return out, total, nil
}

func (s *Store) count(ctx context.Context, table string) (int, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count %s: %w", table, err)
	}
	return n, nil
}
