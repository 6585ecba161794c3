package router

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// exposedHeaders are the response headers browsers may read.
const exposedHeaders = "X-Request-Id, X-Sluice-Provider, X-Sluice-Deployment, X-Sluice-Attempts, X-Sluice-Model, X-Sluice-Hedged, X-Sluice-Overhead-Ms, Retry-After"

// cors answers CORS preflights and marks responses readable by the allowed
// origins, so browser apps can call the gateway directly. Credentials
// (cookies) are never allowed: clients authenticate with bearer keys.
//
// Every answer says Vary: Origin, allowed origin or not (or none): what it
// carries depends on the Origin, so a shared cache must not hand one
// origin's answer to another.
func (h *Handler) cors(c *gin.Context) {
	hd := c.Writer.Header()
	hd.Add("Vary", "Origin")
	origin := c.Request.Header.Get("Origin")
	if origin == "" || !h.originAllowed(origin) {
		c.Next()
		return
	}
	hd.Set("Access-Control-Allow-Origin", origin)
	if c.Request.Method == http.MethodOptions && c.Request.Header.Get("Access-Control-Request-Method") != "" {
		hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if rh := c.Request.Header.Get("Access-Control-Request-Headers"); rh != "" && headerList(rh) {
			hd.Set("Access-Control-Allow-Headers", rh)
		}
		hd.Set("Access-Control-Max-Age", "600")
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	hd.Set("Access-Control-Expose-Headers", exposedHeaders)
	c.Next()
}

func (h *Handler) originAllowed(origin string) bool {
	for _, o := range h.opts.CORSOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// maxRequestHeadersList bounds the Access-Control-Request-Headers value
// echoed in a preflight answer; browsers send a short list.
const maxRequestHeadersList = 2 << 10

// headerList reports whether v is a plausible list of header names: short,
// and only token characters, commas and spaces. Anything else is not
// echoed (the preflight then allows no extra headers), so a preflight
// cannot make the gateway repeat 64 KiB of arbitrary text.
func headerList(v string) bool {
	if len(v) > maxRequestHeadersList {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ',' || c == ' ') {
			return false
		}
	}
	return true
}
