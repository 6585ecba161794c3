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

// effectiveMaxInFlight is the request bound the proxy sheds at: the
// configured one, or, when none is (0), what the open-file limit allows,
// so that a surge gets 503 with Retry-After before accepts start failing
// for lack of descriptors. 0 (no bound) only where the limit is unknown.
func effectiveMaxInFlight(configured int64) int64 {
	if configured > 0 {
		return configured
	}
	limit, ok := openFileLimit()
	if !ok {
		return 0
	}
	streams, _ := fdAdvice(limit, 0)
	return max(streams, 1)
}

// logFDLimit logs the open-file limit at start and the request bound in
// force (derived from the limit when SLUICE_MAX_INFLIGHT is unset), with a
// warning when a configured bound does not fit under the limit.
func logFDLimit(log *slog.Logger, configured int64) {
	limit, ok := openFileLimit()
	if !ok {
		return
	}
	streams, warning := fdAdvice(limit, configured)
	log.Info("open-file limit", "limit", limit, "max_concurrent_requests", streams,
		"max_inflight", effectiveMaxInFlight(configured), "max_inflight_from_limit", configured == 0)
	if warning != "" {
		log.Warn(warning)
	}
}
