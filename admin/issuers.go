package admin

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/store"
)

// mountIssuers registers /admin/issuers: the OIDC/JWT issuers whose
// tokens the proxy accepts. The HS256 secret is write-only; views show
// hs256_secret_set.
func (a *api) mountIssuers(g *gin.RouterGroup) {
	st := a.opts.Store
	resource[store.IssuerInput, store.IssuerPatch, store.Issuer]{
		list: st.ListIssuers, get: st.GetIssuer, update: st.UpdateIssuer,
		create: func(ctx context.Context, in store.IssuerInput) (any, error) { return st.CreateIssuer(ctx, in) },
		remove: func(ctx context.Context, id string) (*store.Issuer, error) { return nil, st.DeleteIssuer(ctx, id) },
	}.mount(a, g, "/issuers")
}
