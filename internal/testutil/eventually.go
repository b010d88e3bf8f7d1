// Package testutil holds helpers shared by Arsenal's tests.
package testutil

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Scale multiplies test deadlines; set ARSENAL_TEST_SCALE=3 on slow machines.
func Scale(d time.Duration) time.Duration {
	if f, err := strconv.ParseFloat(os.Getenv("ARSENAL_TEST_SCALE"), 64); err == nil && f > 0 {
		return time.Duration(float64(d) * f)
	}
	return d
}

// Eventually polls cond until it returns true or the (scaled) deadline
// passes, then fails the test with msg. It never sleeps a fixed time to
// "let things settle": it waits for the condition itself.
func Eventually(t testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(Scale(within))
	wait := time.Millisecond
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: "+msg, append([]any{Scale(within)}, args...)...)
		}
		time.Sleep(wait)
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// Recv waits for one value from ch with a deadline.
func Recv[T any](t testing.TB, ch <-chan T, within time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Scale(within)):
		t.Fatalf("no %s within %s", what, Scale(within))
	}
	var zero T
	return zero
}

// Never fails if a value arrives on ch within d (for negative claims).
func Never[T any](t testing.TB, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	case <-time.After(d):
	}
}
