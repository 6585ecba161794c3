package router

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/llm"
)

// models serves GET /v1/models: the models the caller's key may use.
func (h *Handler) models(c *gin.Context) {
	st := h.opts.State()
	p, aerr := st.Auth.AuthenticateHeader(c.Request.Context(), st.Snapshot, c.Request.Header, h.opts.Now())
	if aerr != nil {
		writeError(c.Writer, aerr)
		return
	}
	names := make([]string, 0, len(st.Snapshot.Models))
	for name := range st.Snapshot.Models {
		if p.Allows(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	b := append(make([]byte, 0, 64+64*len(names)), `{"object":"list","data":[`...)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendModel(b, st.Snapshot.Models[name])
	}
	b = append(b, "]}"...)
	writeJSON(c.Writer, http.StatusOK, b)
}

// model serves GET /v1/models/{model}.
func (h *Handler) model(c *gin.Context) {
	st := h.opts.State()
	p, aerr := st.Auth.AuthenticateHeader(c.Request.Context(), st.Snapshot, c.Request.Header, h.opts.Now())
	if aerr != nil {
		writeError(c.Writer, aerr)
		return
	}
	id := strings.TrimPrefix(c.Param("model"), "/")
	m, ok := st.Snapshot.Models[id]
	if !ok || !p.Allows(m.Name) {
		writeError(c.Writer, llm.Errorf(llm.KindNotFound, "the model %q does not exist or you do not have access to it", truncate(id, 256)))
		return
	}
	writeJSON(c.Writer, http.StatusOK, appendModel(nil, m))
}

func appendModel(b []byte, m *llm.Model) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, m.Name)
	b = append(b, `,"object":"model","created":`...)
	b = strconv.AppendInt(b, m.CreatedAt.Unix(), 10)
	return append(b, `,"owned_by":"sluice"}`...)
}
