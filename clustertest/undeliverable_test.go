package clustertest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
)

// notOnNode is registered in this test process only: the 'arsenal node'
// processes of the harness have never heard of it, as a node running an
// older build would not have.
type notOnNode struct{ N int }

const notOnNodeName = "clustertest.test.notOnNode"

func init() { codec.MustRegister[notOnNode](notOnNodeName) }

// replier answers every call with a notOnNode.
type replier struct{ process.Server }

func (replier) HandleCall(*process.Proc, process.From, any) (any, error) {
	return notOnNode{N: 2}, nil
}

// A call whose request, or whose reply, is of a type the receiving node has
// not registered fails with an error that says so, at once: never a timeout,
// never a silent drop. The receiver of the request counts it in
// arsenal_messages_undeliverable_total and logs it; the link stays up.
//
// The cluster is one real 'arsenal node' process and one node in this test
// process, which has the type registered: two builds of one service.
func TestUnregisteredCallAndReply(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	ready := c.Node(0).Ready()
	e, err := node.Start(context.Background(), node.Config{
		Name: "t@127.0.0.1", Cluster: ready.Cluster, Secret: []byte(c.Secret()),
		Profile: cluster.ProfileFast, Discovery: cluster.StaticSeeds(ready.NodeAddr),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before the cluster's own cleanup
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	c.Eventually(30*time.Second, func() bool {
		m, ok := e.Cluster().Member(c.NodeName(0))
		return ok && m.Status == cluster.StatusAlive
	}, "the test process's node sees n1 alive")

	// 1. A request of a type n1 does not know.
	echo, err := process.ParsePID(c.Spawn(0, "echo"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.Runtime().Call(context.Background(), echo, "hello"); err != nil || v != "hello" {
		t.Fatalf("a registered request: %v, %v", v, err)
	}
	// The deadline is far beyond the answer that must come: a timeout
	// would be the failure this test is about.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	_, err = e.Runtime().Call(ctx, echo, notOnNode{N: 1})
	cancel()
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call with an unregistered request: err = %v; want the receiver's error, not a timeout", err)
	}
	if !strings.Contains(err.Error(), "not delivered") || !strings.Contains(err.Error(), notOnNodeName) {
		t.Fatalf("the caller's error %q does not say the request was not delivered, naming its type %q", err, notOnNodeName)
	}
	c.Eventually(10*time.Second, func() bool {
		return undeliverable(t, c.Node(0).URL()) == 1
	}, "n1 counts the undeliverable request in arsenal_messages_undeliverable_total")
	c.Eventually(10*time.Second, func() bool {
		return strings.Contains(c.Node(0).Logs(), "its type is not registered on this node")
	}, "n1 logs the undeliverable request")
	// The link stays up: the next call goes through.
	if v, err := e.Runtime().Call(context.Background(), echo, "again"); err != nil || v != "again" {
		t.Fatalf("a registered request after the unregistered one: %v, %v", v, err)
	}

	// 2. A reply of a type n1 does not know: n1 calls a process of this
	// test process that answers with a notOnNode.
	rep, err := e.Runtime().Spawn(replier{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CallTo(0, rep, "ping")
	if err == nil {
		t.Fatal("a call answered with an unregistered type succeeded")
	}
	if !strings.Contains(err.Error(), "reply from t@127.0.0.1 not delivered") || !strings.Contains(err.Error(), notOnNodeName) {
		t.Fatalf("the caller's error %q does not say the reply was not delivered, naming its type %q (a timeout would be a silent drop)", err, notOnNodeName)
	}
	c.Eventually(10*time.Second, func() bool {
		return undeliverable(t, c.Node(0).URL()) == 2
	}, "n1 counts the undeliverable reply too")
}

var undeliverableRE = regexp.MustCompile(`(?m)^arsenal_messages_undeliverable_total(?:\{[^}]*\})? (\S+)$`)

// undeliverable is arsenal_messages_undeliverable_total in the node's
// /metrics (-1 if it cannot be read).
func undeliverable(t *testing.T, url string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return -1
	}
	m := undeliverableRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("/metrics of %s has no arsenal_messages_undeliverable_total", url)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("arsenal_messages_undeliverable_total %q: %v", m[1], err)
	}
	return v
}
