package admin

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/store"
)

// --- providers ---

func (a *api) listProviders(c *gin.Context) {
	p, ok := a.page(c)
	if !ok {
		return
	}
	items, total, err := a.opts.Store.ListProviders(c.Request.Context(), p)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listResponse[store.Provider]{Items: items, Total: total, Page: p.Page, PageSize: p.PageSize})
}

func (a *api) createProvider(c *gin.Context) {
	var in store.ProviderInput
	if !a.decode(c, &in) {
		return
	}
	out, err := a.opts.Store.CreateProvider(c.Request.Context(), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.changed()
	c.JSON(http.StatusCreated, out)
}

func (a *api) getProvider(c *gin.Context) {
	out, err := a.opts.Store.GetProvider(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (a *api) patchProvider(c *gin.Context) {
	var patch store.ProviderPatch
	if !a.decode(c, &patch) {
		return
	}
	a.updateProvider(c, patch)
}

func (a *api) putProvider(c *gin.Context) {
	var in store.ProviderInput
	if !a.decode(c, &in) {
		return
	}
	a.updateProvider(c, in.AsPatch())
}

func (a *api) updateProvider(c *gin.Context, patch store.ProviderPatch) {
	out, err := a.opts.Store.UpdateProvider(c.Request.Context(), c.Param("id"), patch)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.changed()
	c.JSON(http.StatusOK, out)
}

func (a *api) deleteProvider(c *gin.Context) {
	if err := a.opts.Store.DeleteProvider(c.Request.Context(), c.Param("id")); err != nil {
		a.fail(c, err)
		return
	}
	a.changed()
	c.Status(http.StatusNoContent)
}

// --- models ---

func (a *api) listModels(c *gin.Context) {
	p, ok := a.page(c)
	if !ok {
		return
	}
	items, total, err := a.opts.Store.ListModels(c.Request.Context(), p)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listResponse[store.Model]{Items: items, Total: total, Page: p.Page, PageSize: p.PageSize})
}

func (a *api) createModel(c *gin.Context) {
	var in store.ModelInput
	if !a.decode(c, &in) {
		return
	}
	out, err := a.opts.Store.CreateModel(c.Request.Context(), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.changed()
	c.JSON(http.StatusCreated, out)
}

func (a *api) getModel(c *gin.Context) {
	out, err := a.opts.Store.GetModel(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (a *api) patchModel(c *gin.Context) {
	var patch store.ModelPatch
	if !a.decode(c, &patch) {
		return
	}
	a.updateModel(c, patch)
}

func (a *api) putModel(c *gin.Context) {
	var in store.ModelInput
	if !a.decode(c, &in) {
		return
	}
	a.updateModel(c, in.AsPatch())
}

func (a *api) updateModel(c *gin.Context, patch store.ModelPatch) {
	out, err := a.opts.Store.UpdateModel(c.Request.Context(), c.Param("id"), patch)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.changed()
	c.JSON(http.StatusOK, out)
}

func (a *api) deleteModel(c *gin.Context) {
	if err := a.opts.Store.DeleteModel(c.Request.Context(), c.Param("id")); err != nil {
		a.fail(c, err)
		return
	}
	a.changed()
	c.Status(http.StatusNoContent)
}

// --- keys ---

// createdKey is the one response that carries a key's secret.
type createdKey struct {
	store.Key
	Secret string `json:"key"`
}

func (a *api) listKeys(c *gin.Context) {
	p, ok := a.page(c)
	if !ok {
		return
	}
	items, total, err := a.opts.Store.ListKeys(c.Request.Context(), p)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listResponse[store.Key]{Items: items, Total: total, Page: p.Page, PageSize: p.PageSize})
}

func (a *api) createKey(c *gin.Context) {
	var in store.KeyInput
	if !a.decode(c, &in) {
		return
	}
	k, secret, err := a.opts.Store.CreateKey(c.Request.Context(), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.changed()
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, createdKey{Key: k, Secret: secret})
}

func (a *api) getKey(c *gin.Context) {
	out, err := a.opts.Store.GetKey(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (a *api) patchKey(c *gin.Context) {
	var patch store.KeyPatch
	if !a.decode(c, &patch) {
		return
	}
	a.updateKey(c, patch)
}

func (a *api) putKey(c *gin.Context) {
	var in store.KeyInput
	if !a.decode(c, &in) {
		return
	}
	a.updateKey(c, in.AsPatch())
}

func (a *api) updateKey(c *gin.Context, patch store.KeyPatch) {
	out, err := a.opts.Store.UpdateKey(c.Request.Context(), c.Param("id"), patch)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.changed()
	c.JSON(http.StatusOK, out)
}

func (a *api) revokeKey(c *gin.Context) {
	out, err := a.opts.Store.RevokeKey(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	a.changed()
	c.JSON(http.StatusOK, out)
}
