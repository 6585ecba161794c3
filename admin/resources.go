package admin

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/store"
)

// resource is one admin collection served by the six generic handlers:
// GET list, POST create, GET/PUT/PATCH/DELETE one by :id. In is the body
// of POST and PUT (a PUT replaces: In.AsPatch sets every field), Patch the
// body of PATCH, Out what the store returns. The handlers decode strictly,
// map store errors (see fail), and call OnChange after every write; they
// know nothing of the fields, so a new resource is one value of this type.
type resource[In interface{ AsPatch() Patch }, Patch, Out any] struct {
	list   func(context.Context, store.Page) ([]Out, int, error)
	get    func(context.Context, string) (Out, error)
	update func(context.Context, string, Patch) (Out, error)
	// create returns the 201 body (usually the Out).
	create func(context.Context, In) (any, error)
	// createSecret marks a 201 body that carries a secret shown once: it
	// is sent with Cache-Control: no-store.
	createSecret bool
	// remove deletes; a non-nil result is sent with 200 (e.g. a revoked
	// key), nil means 204.
	remove func(context.Context, string) (*Out, error)
	// put, when set, serves PUT instead of update(id, in.AsPatch()): it
	// creates the item under the path's id (201) or replaces it (200).
	put func(context.Context, string, In) (Out, bool, error)
	// quota, when set, names the quota subject of an item: GET of one item
	// then adds "quota" (Options.Quotas' report) to the object.
	quota func(Out) (scope, id string)
}

// mount registers the resource's routes under path on g.
func (r resource[In, Patch, Out]) mount(a *api, g *gin.RouterGroup, path string) {
	one := path + "/:id"
	g.GET(path, func(c *gin.Context) {
		p, ok := a.page(c)
		if !ok {
			return
		}
		items, total, err := r.list(c.Request.Context(), p)
		if err != nil {
			a.fail(c, err)
			return
		}
		a.json(c, http.StatusOK, listResponse[Out]{Items: items, Total: total, Page: p.Page, PageSize: p.PageSize})
	})
	if r.create != nil {
		g.POST(path, func(c *gin.Context) {
			var in In
			if !a.decode(c, &in) {
				return
			}
			out, err := r.create(c.Request.Context(), in)
			if err != nil {
				a.fail(c, err)
				return
			}
			a.changed()
			if r.createSecret {
				c.Header("Cache-Control", "no-store")
			}
			a.json(c, http.StatusCreated, out)
		})
	}
	g.GET(one, func(c *gin.Context) {
		out, err := r.get(c.Request.Context(), c.Param("id"))
		if err != nil {
			a.fail(c, err)
			return
		}
		if r.quota != nil && a.opts.Quotas != nil {
			scope, id := r.quota(out)
			a.jsonWithQuota(c, out, scope, id)
			return
		}
		a.json(c, http.StatusOK, out)
	})
	g.PATCH(one, func(c *gin.Context) {
		var patch Patch
		if a.decode(c, &patch) {
			r.write(a, c, patch)
		}
	})
	g.PUT(one, func(c *gin.Context) {
		var in In
		if !a.decode(c, &in) {
			return
		}
		if r.put == nil {
			r.write(a, c, in.AsPatch())
			return
		}
		out, created, err := r.put(c.Request.Context(), c.Param("id"), in)
		if err != nil {
			a.fail(c, err)
			return
		}
		a.changed()
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		a.json(c, status, out)
	})
	g.DELETE(one, func(c *gin.Context) {
		out, err := r.remove(c.Request.Context(), c.Param("id"))
		if err != nil {
			a.fail(c, err)
			return
		}
		a.changed()
		if out == nil {
			c.Status(http.StatusNoContent)
			return
		}
		a.json(c, http.StatusOK, out)
	})
}

func (r resource[In, Patch, Out]) write(a *api, c *gin.Context, patch Patch) {
	out, err := r.update(c.Request.Context(), c.Param("id"), patch)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.changed()
	a.json(c, http.StatusOK, out)
}

// createdKey is the one response that carries a key's secret.
type createdKey struct {
	store.Key
	Secret string `json:"key"`
}

// mountResources registers /admin/providers, /admin/models, /admin/keys,
// /admin/owners and /admin/issuers.
func (a *api) mountResources(g *gin.RouterGroup) {
	st := a.opts.Store
	resource[store.ProviderInput, store.ProviderPatch, store.Provider]{
		list: st.ListProviders, get: st.GetProvider, update: st.UpdateProvider,
		create: func(ctx context.Context, in store.ProviderInput) (any, error) { return st.CreateProvider(ctx, in) },
		remove: func(ctx context.Context, id string) (*store.Provider, error) { return nil, st.DeleteProvider(ctx, id) },
	}.mount(a, g, "/providers")

	resource[store.ModelInput, store.ModelPatch, store.Model]{
		list: st.ListModels, get: st.GetModel, update: st.UpdateModel,
		create: func(ctx context.Context, in store.ModelInput) (any, error) { return st.CreateModel(ctx, in) },
		remove: func(ctx context.Context, id string) (*store.Model, error) { return nil, st.DeleteModel(ctx, id) },
		quota:  func(m store.Model) (string, string) { return QuotaModel, m.Name },
	}.mount(a, g, "/models")

	resource[store.KeyInput, store.KeyPatch, store.Key]{
		list: st.ListKeys, get: st.GetKey, update: st.UpdateKey,
		create: func(ctx context.Context, in store.KeyInput) (any, error) {
			k, secret, err := st.CreateKey(ctx, in)
			return createdKey{Key: k, Secret: secret}, err
		},
		createSecret: true,
		// DELETE revokes a key and answers with it.
		remove: func(ctx context.Context, id string) (*store.Key, error) {
			k, err := st.RevokeKey(ctx, id)
			return &k, err
		},
		quota: func(k store.Key) (string, string) { return QuotaKey, k.ID },
	}.mount(a, g, "/keys")

	// Owners are named by the path: PUT creates or replaces, no POST.
	resource[store.OwnerInput, store.OwnerPatch, store.Owner]{
		list: st.ListOwners, get: st.GetOwner, update: st.PatchOwner, put: st.PutOwner,
		remove: func(ctx context.Context, name string) (*store.Owner, error) { return nil, st.DeleteOwner(ctx, name) },
		quota:  func(o store.Owner) (string, string) { return QuotaOwner, o.Name },
	}.mount(a, g, "/owners")

	a.mountIssuers(g)
}

// createdAdminKey is the one response that carries an admin key's secret.
type createdAdminKey struct {
	store.AdminKey
	Secret string `json:"key"`
}

// mountAdminKeys registers /admin/admin-keys: admin keys with a role, for
// admins only (see viewerMay). The creator's principal id is recorded as
// created_by; DELETE revokes.
func (a *api) mountAdminKeys(g *gin.RouterGroup) {
	st := a.opts.Store
	resource[store.AdminKeyInput, store.AdminKeyPatch, store.AdminKey]{
		list: st.ListAdminKeys, get: st.GetAdminKey, update: st.UpdateAdminKey,
		create: func(ctx context.Context, in store.AdminKeyInput) (any, error) {
			by := ""
			if p := PrincipalFrom(ctx); p != nil {
				by = p.Actor()
			}
			k, secret, err := st.CreateAdminKey(ctx, in, by)
			return createdAdminKey{AdminKey: k, Secret: secret}, err
		},
		createSecret: true,
		remove: func(ctx context.Context, id string) (*store.AdminKey, error) {
			k, err := st.RevokeAdminKey(ctx, id)
			return &k, err
		},
	}.mount(a, g, "/admin-keys")
}
