package server

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// configChannel is the Redis pub/sub channel of configuration changes.
const configChannel = "sluice:config"

// fanout tells other replicas about configuration changes over Redis
// pub/sub. The store's version poll remains the safety net for lost
// messages.
type fanout struct {
	rdb redis.UniversalClient
	log *slog.Logger
}

func newFanout(ctx context.Context, url string, log *slog.Logger) (*fanout, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL is not a valid redis:// URL")
	}
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = time.Second
	opts.WriteTimeout = time.Second
	f := &fanout{rdb: redis.NewClient(opts), log: log}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := f.rdb.Ping(pctx).Err(); err != nil {
		log.Warn("redis unreachable at start; will keep trying", "addr", opts.Addr)
	}
	return f, nil
}

func (f *fanout) ping(ctx context.Context) error { return f.rdb.Ping(ctx).Err() }

func (f *fanout) publish(ctx context.Context, version int64) {
	if err := f.rdb.Publish(ctx, configChannel, strconv.FormatInt(version, 10)).Err(); err != nil {
		f.log.Warn("redis publish of configuration change failed", "err", err)
	}
}

// subscribe calls onChange for each change message until ctx ends.
func (f *fanout) subscribe(ctx context.Context, onChange func()) {
	for ctx.Err() == nil {
		ps := f.rdb.Subscribe(ctx, configChannel)
		ch := ps.Channel()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case _, ok := <-ch:
				if !ok {
					break loop
				}
				onChange()
			}
		}
		_ = ps.Close()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (f *fanout) close() { _ = f.rdb.Close() }
