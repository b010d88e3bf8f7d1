package sim

import (
	"context"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/internal/testutil"
)

// StartTimeout bounds New in Start, times ARSENAL_TEST_SCALE.
const StartTimeout = 30 * time.Second

// Start is New for tests: it fails the test if the cluster does not start
// and converge, closes the cluster when the test ends, and prints the
// diagnostics (matrix, timeline, node logs) if the test failed.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(StartTimeout))
	defer cancel()
	c, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("sim: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("\n" + c.Diagnostics())
		}
		c.Close()
	})
	return c
}
