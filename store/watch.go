package store

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannel is the PostgreSQL NOTIFY channel for configuration changes.
const notifyChannel = "sluice_config"

// DefaultWatchPoll is Watch's version poll interval when poll <= 0.
const DefaultWatchPoll = 500 * time.Millisecond

// Watch calls onChange with the configuration version whenever it changes,
// until ctx is done; it blocks and leaves no goroutine behind.
//
// The version is polled every poll (default 500ms). On PostgreSQL, Watch
// also LISTENs on channel "sluice_config" on a dedicated connection
// (reconnecting with backoff) and checks the version as soon as a
// notification arrives, so changes from any replica arrive within
// milliseconds. onChange runs on Watch's goroutine, once per distinct
// version seen; it is also called once with the current version when Watch
// starts, so a caller that loaded a snapshot before calling Watch cannot
// miss a change made in between.
func (s *Store) Watch(ctx context.Context, poll time.Duration, onChange func(version int64)) {
	if poll <= 0 {
		poll = DefaultWatchPoll
	}
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.dialect == DialectPostgres {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.listen(ctx, wake)
		}()
	}
	last, seen := int64(0), false
	check := func() {
		v, err := s.Version(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("config version check failed", "err", err)
			}
			return
		}
		if !seen || v != last {
			last, seen = v, true
			onChange(v)
		}
	}
	check()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		case <-wake:
			check()
		}
	}
}

// listen holds a LISTEN connection until ctx is done, signalling wake on
// every notification and after every (re)connect.
func (s *Store) listen(ctx context.Context, wake chan<- struct{}) {
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, func() {
			backoff = 100 * time.Millisecond
			signal()
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("config listener disconnected; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, signal func()) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, s.pgDSN)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	signal() // changes may have happened while disconnected
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		signal()
	}
}
