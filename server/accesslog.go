package server

import (
	"fmt"
	"io"
	"os"

	"github.com/sluice-ai/sluice/router"
)

// openAccessLog opens Config.AccessLog: stdout, stderr, off (none, false)
// or a file appended to (closed by closeAll).
func (s *Server) openAccessLog() error {
	var out io.Writer
	switch s.cfg.AccessLog {
	case "off", "none", "false":
		return nil
	case "stdout":
		out = os.Stdout
	case "stderr":
		out = os.Stderr
	default:
		f, err := os.OpenFile(s.cfg.AccessLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		out, s.accessF = f, f
	}
	s.access = router.NewAccessLog(out)
	return nil
}
