package balancer

import "github.com/sluice-ai/sluice/llm"

// NextAvailable is Next when a deployment not yet handed out is available
// (neither cooling, ejected nor credential-dead), nil otherwise, without
// handing anything out: a hedge is worth sending only to a deployment
// expected to answer.
func (p *Plan) NextAvailable() *llm.Deployment {
	if p.left == 0 {
		return nil
	}
	now := p.b.now()
	all := p.ms.healths(p.b, p.m.Deployments)
	for i := range p.m.Deployments {
		if !p.tried[i] && all[i].available(now) {
			return p.Next()
		}
	}
	return nil
}
