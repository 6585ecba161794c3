package server

import (
	"fmt"
	"log/slog"
)

// fdPerStream is the file descriptors one proxied request holds: the
// client's connection and the upstream's.
const fdPerStream = 2

// fdReserve is the descriptors kept for everything else: listeners, the
// database pool, Redis, logs, idle upstream connections.
const fdReserve = 256

// fdAdvice says what the process's descriptor limit allows: the number of
// concurrent proxy requests it can hold, and a warning when the configured
// bound (maxInFlight, 0 for none) does not fit under it. Without a bound
// the capacity is only logged (quick-start and development run so).
func fdAdvice(limit uint64, maxInFlight int64) (streams int64, warning string) {
	if limit <= fdReserve {
		return 0, fmt.Sprintf("the open-file limit is %d: too low to serve; raise it (ulimit -n, LimitNOFILE=)", limit)
	}
	streams = int64((limit - fdReserve) / fdPerStream)
	switch {
	case maxInFlight > streams:
		return streams, fmt.Sprintf("SLUICE_MAX_INFLIGHT=%d needs about %d open files but the limit is %d: beyond about %d concurrent requests new connections fail instead of getting 503; lower SLUICE_MAX_INFLIGHT or raise the limit", maxInFlight, maxInFlight*fdPerStream+fdReserve, limit, streams)
	}
	return streams, ""
}

// logFDLimit logs the open-file limit at start, with a warning when the
// configured request bound does not fit under it.
func logFDLimit(log *slog.Logger, maxInFlight int64) {
	limit, ok := openFileLimit()
	if !ok {
		return
	}
	streams, warning := fdAdvice(limit, maxInFlight)
	log.Info("open-file limit", "limit", limit, "max_concurrent_requests", streams, "max_inflight", maxInFlight)
	if warning != "" {
		log.Warn(warning)
	}
}
