package admin

import (
	"context"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
)

// userinfoRE and passwordRE find credentials that a dependency's error
// might echo from its DSN; readiness errors are redacted with them.
var (
	userinfoRE = regexp.MustCompile(`://[^/@\s]+@`)
	passwordRE = regexp.MustCompile(`(?i)(password=)[^&\s]+`)
)

func redact(s string) string {
	return passwordRE.ReplaceAllString(userinfoRE.ReplaceAllString(s, "://***@"), "${1}***")
}

func (a *api) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	var err error
	if a.opts.Ready != nil {
		err = a.opts.Ready(ctx)
	} else if perr := a.opts.Store.Ping(ctx); perr != nil {
		a.log.Warn("admin: readiness: store ping failed", "err", perr)
		err = errStoreUnreachable
	}
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "error": redact(err.Error())})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// health serves GET /admin/health: Options.Health's result as {"items": …}.
func (a *api) health(c *gin.Context) {
	a.json(c, http.StatusOK, gin.H{"items": a.opts.Health(c.Request.Context())})
}

type readyError string

func (e readyError) Error() string { return string(e) }

const errStoreUnreachable = readyError("store unreachable")
