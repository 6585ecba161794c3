package router

import (
	"testing"

	"github.com/gin-gonic/gin"
)

// TestNewLeavesGinModeAlone: building a handler does not change gin's
// process-global mode (it used to switch it to release mode as a side
// effect); ReleaseMode does, once, when the program asks.
func TestNewLeavesGinModeAlone(t *testing.T) {
	prev := gin.Mode()
	t.Cleanup(func() { gin.SetMode(prev) })
	gin.SetMode(gin.DebugMode)
	New(Options{})
	if m := gin.Mode(); m != gin.DebugMode {
		t.Fatalf("router.New changed gin's mode to %s", m)
	}
	t.Setenv(gin.EnvGinMode, "")
	ReleaseMode()
	if m := gin.Mode(); m != gin.ReleaseMode {
		t.Fatalf("ReleaseMode: mode %s", m)
	}
	gin.SetMode(gin.TestMode)
	t.Setenv(gin.EnvGinMode, gin.TestMode)
	ReleaseMode()
	if m := gin.Mode(); m != gin.TestMode {
		t.Fatalf("GIN_MODE must win: mode %s", m)
	}
}
