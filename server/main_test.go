package server

import (
	"os"
	"testing"
)

// TestMain sets the frameworks' process-wide mode once, as cmd/sluice
// does, so test output is not flooded with gin's route listing.
func TestMain(m *testing.M) {
	ReleaseMode()
	os.Exit(m.Run())
}
