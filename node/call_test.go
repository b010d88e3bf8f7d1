package node_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
)

// A remote call that gives up (deadline or cancel) leaves nothing behind
// on the connection, and the waiting state it reused never answers a later
// call: many calls that give up, interleaved with calls from other
// goroutines that are answered, each get their own outcome.
func TestRemoteCallGiveUpAndReuse(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	target, err := b.Runtime().Spawn(echo{})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := b.Runtime().Spawn(staller{})
	if err != nil {
		t.Fatal(err)
	}
	rt := a.Runtime()
	if v, err := rt.Call(context.Background(), target, -1); err != nil || asInt(v) != -1 {
		t.Fatalf("first call = %v, %v", v, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				// A context without a deadline, cancelled: the node's own
				// timing path (CallWithin) gives up on ctx.Done.
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, err := rt.Call(ctx, slow, i)
					if !errors.Is(err, context.Canceled) {
						errs <- errors.New("cancelled call: " + errString(err))
					}
				}()
				cancel()
				<-done
				// A context with a deadline.
				dctx, dcancel := context.WithTimeout(context.Background(), time.Millisecond)
				if _, err := rt.Call(dctx, slow, i); !errors.Is(err, process.Timeout) {
					errs <- errors.New("timed-out call: " + errString(err))
				}
				dcancel()
				want := g*1000 + i
				v, err := rt.Call(context.Background(), target, want)
				if err != nil || asInt(v) != want {
					errs <- errors.New("answered call: wrong reply or " + errString(err))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Nothing of the calls that gave up waits on the connection.
	if li := linkTo(a, b.Name()); li.Calls != 0 {
		t.Fatalf("%d calls still registered on the connection", li.Calls)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

func asInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case uint64:
		return int(x)
	}
	return -1 << 31
}

// A call timed by the node with nothing to select on (no ctx.Done), to a
// node in another process, waits on a pipe (callPipe): one that times out leaves nothing on the
// connection and its pipe, reused, never answers a later call; calls
// waiting on their pipes when the connection is lost fail with
// noconnection.
func TestRemoteCallOnPipeTimesOutAndFailsOnLoss(t *testing.T) {
	node.PipesInProcess(t) // the two nodes share this process
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	target, err := b.Runtime().Spawn(echo{})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := b.Runtime().Spawn(staller{})
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				_, err := node.CallWithin(a, bg, slow, i, time.Millisecond)
				var ce *process.CallError
				if !errors.Is(err, process.Timeout) || !errors.As(err, &ce) || ce.PID != slow {
					errs <- errors.New("timed-out call: " + errString(err))
				}
				want := g*1000 + i
				v, err := node.CallWithin(a, bg, target, want, time.Minute)
				if err != nil || asInt(v) != want {
					errs <- errors.New("answered call: wrong reply or " + errString(err))
				}
			}
		}()
	}
	// More calls at once than there are pipes (maxPipes): the rest wait
	// on their channels.
	for g := 0; g < 100; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := 100000 + g
			v, err := node.CallWithin(a, bg, target, want, time.Minute)
			if err != nil || asInt(v) != want {
				errs <- errors.New("concurrent call: wrong reply or " + errString(err))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if li := linkTo(a, b.Name()); li.Calls != 0 {
		t.Fatalf("%d calls still registered on the connection", li.Calls)
	}
	if node.OpenPipes() == 0 {
		t.Fatal("no call waited on a pipe")
	}

	const calls = 3
	callErrs := make(chan error, calls)
	for range calls {
		go func() {
			_, err := node.CallWithin(a, bg, slow, "wait", time.Hour)
			callErrs <- err
		}()
	}
	testutil.Eventually(t, wait, func() bool { return linkTo(a, b.Name()).Calls == calls }, "calls not waiting")
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for range calls {
		// Not a timing check: the hour-long timeout would hang the test.
		if err := <-callErrs; !errors.Is(err, process.NoConnection) {
			t.Errorf("waiting call failed with %v; want noconnection", err)
		}
	}
}
