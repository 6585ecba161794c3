package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
	"github.com/sluice-ai/sluice/router"
)

// newLimiter builds the quota limiter: on Redis when REDIS_URL is set
// (shared by every replica), else in process. Budgets missing from the
// store are rebuilt from the usage records in the database.
func (s *Server) newLimiter(reg prometheus.Registerer) *quota.Limiter {
	o := quota.Options{Spend: s.store, Metrics: quota.NewMetrics(reg), Logger: s.log,
		Timeout: s.cfg.QuotaTimeout, DefaultOutputTokens: s.cfg.QuotaDefaultOutputTokens,
		OnHeadroom: func(id string, h quota.Headroom) {
			s.balancer.SetHeadroom(id, balancer.Headroom{Frac: h.Frac, Refill: h.Refill, Empty: h.Empty})
		}}
	if s.rdb != nil {
		s.quotaRedis = quota.NewRedis(s.rdb, quota.RedisOptions{})
		o.Store, o.Shared = s.quotaRedis, true
	}
	return quota.NewLimiter(o)
}

// heartbeatLoop tells the quota store this replica is alive, and learns
// how many replicas share it: a replica that cannot reach Redis admits
// rate limits locally at its share of each limit.
func (s *Server) heartbeatLoop(ctx context.Context) {
	if s.quotaRedis == nil {
		return
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	const every, ttl = 5 * time.Second, 15 * time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		n, err := s.quotaRedis.Heartbeat(hctx, id, ttl)
		cancel()
		if err == nil {
			s.limiter.SetReplicas(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// admitter adapts the quota limiter to the router's admission phase.
type admitter struct{ l *quota.Limiter }

func (a admitter) Admit(ctx context.Context, ask router.Ask) (router.Admission, *llm.Error) {
	res, e := a.l.Admit(ctx, quotaRequest(&ask))
	if res == nil {
		return nil, e
	}
	return res, e
}

func (a admitter) AdmitDeployment(ctx context.Context, ask router.Ask, d *llm.Deployment) (router.Admission, *llm.Error) {
	res, e := a.l.AdmitDeployment(ctx, quotaRequest(&ask), d)
	if res == nil {
		return nil, e
	}
	return res, e
}

func quotaRequest(ask *router.Ask) *quota.Request {
	r := &quota.Request{ID: ask.ID, Model: ask.Model, PromptTokens: ask.PromptTokens,
		MaxTokens: ask.MaxTokens, Choices: ask.Choices, Embedding: ask.Endpoint == llm.EndpointEmbeddings}
	if p := ask.Principal; p != nil {
		r.Key = p.Key
		if p.Kind == llm.PrincipalJWT {
			r.Subject = quota.Subject{Scope: quota.ScopeSubject, ID: p.ID, Limits: p.Limits}
		}
		if p.Owner != "" && ask.Snapshot != nil {
			r.Owner = ask.Snapshot.Owners[p.Owner]
		}
	}
	return r
}

// quotaReporter shows the admin API a subject's consumption.
type quotaReporter struct{ s *Server }

func (q quotaReporter) Report(ctx context.Context, scope, id string) (any, error) {
	snap := q.s.state.Load().Snapshot
	if snap == nil {
		return nil, nil
	}
	sub := quota.Subject{Scope: quota.Scope(scope), ID: id}
	switch sub.Scope {
	case quota.ScopeKey:
		for _, k := range snap.Keys {
			if k.ID == id {
				sub.Limits = k.Limits
			}
		}
	case quota.ScopeOwner:
		if o := snap.Owners[id]; o != nil {
			sub.Limits = o.Limits
		}
	case quota.ScopeModel:
		if m := snap.Models[id]; m != nil {
			sub.Limits = m.Limits
		}
	}
	v, err := q.s.limiter.Report(ctx, sub)
	if v == nil || err != nil {
		return nil, err
	}
	return v, nil
}
