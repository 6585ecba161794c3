package server

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// configChannel is the Redis pub/sub channel of configuration changes.
const configChannel = "sluice:config"

// fanout tells other replicas about configuration changes over Redis
// pub/sub. The store's version poll remains the safety net for lost
// messages. It does not own the client: the Server closes it.
type fanout struct {
	rdb redis.UniversalClient
	log *slog.Logger
}

func newFanout(rdb redis.UniversalClient, log *slog.Logger) *fanout {
	return &fanout{rdb: rdb, log: log}
}

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
