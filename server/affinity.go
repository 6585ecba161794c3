package server

import (
	"github.com/sluice-ai/sluice/quota"
	"github.com/sluice-ai/sluice/router"
)

// newAffinity builds the prompt-cache affinity store: on Redis when
// REDIS_URL is set, so every replica sends a prefix to the same
// deployment, else in process.
func (s *Server) newAffinity() router.AffinityStore {
	if s.rdb != nil {
		return quota.NewAffinityRedis(s.rdb, quota.AffinityRedisOptions{Logger: s.log})
	}
	return quota.NewAffinityMemory(quota.AffinityMemoryOptions{})
}
