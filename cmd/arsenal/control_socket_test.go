package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/transport"
)

func TestControlSocket(t *testing.T) {
	faults := transport.NewFaults()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Config{
		Name: "cs@127.0.0.1", Cluster: "cs-test", Secret: []byte("0123456789abcdef0123456789abcdef"),
		BindAddr: "127.0.0.1:0", Faults: faults, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer scancel()
		_ = n.Stop(sctx)
	}()

	dir := t.TempDir()
	path := filepath.Join(dir, "n.sock")
	// A stale socket (its node died) is replaced; a live one is not.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	cs := control.NewServer(control.Target{Node: n, Faults: faults})
	defer cs.Close()
	done := cs.Done()
	srv, err := cs.ServeSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v; want mode 0600", fi, err)
	}
	if _, err := control.NewServer(control.Target{Node: n, Faults: faults}).ServeSocket(path); err == nil {
		t.Fatal("a second server took over a live socket")
	}

	var pong string
	if err := controlCall(ctx, path, "ping", nil, &pong); err != nil || pong != "pong" {
		t.Fatalf("ping: %q, %v", pong, err)
	}
	if err := controlCall(ctx, path, "fault", control.Fault{Action: "block", Peer: "other@127.0.0.1", Dir: "both"}, nil); err != nil {
		t.Fatal(err)
	}
	if r := faults.Rules(); len(r) != 1 || r[0].Peer != "other@127.0.0.1" || r[0].Block != transport.Both {
		t.Fatalf("rules after block: %v", r)
	}
	if err := controlCall(ctx, path, "fault", control.Fault{Action: "clear_all"}, nil); err != nil {
		t.Fatal(err)
	}
	if r := faults.Rules(); len(r) != 0 {
		t.Fatalf("rules after clear_all: %v", r)
	}
	blocks := []control.Fault{{Action: "block", Peer: "a@127.0.0.1", Dir: "both"}, {Action: "block", Peer: "127.0.0.1:9", Dir: "both"}}
	if err := setFaults(ctx, path, blocks); err != nil {
		t.Fatal(err)
	}
	if r := faults.Rules(); len(r) != 2 {
		t.Fatalf("rules after setFaults of two blocks: %v", r)
	}
	if err := setFaults(ctx, path, blocks[:1]); err != nil {
		t.Fatal(err)
	}
	if r := faults.Rules(); len(r) != 1 || r[0].Peer != "a@127.0.0.1" {
		t.Fatalf("setFaults must replace the rules, not add to them: %v", r)
	}
	if err := setFaults(ctx, path, []control.Fault{{Action: "explode"}}); err == nil {
		t.Fatal("a bad fault was accepted")
	}
	if err := controlCall(ctx, path, "nonsense", nil, nil); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	var members []control.Member
	if err := controlCall(ctx, path, "members", nil, &members); err != nil || len(members) != 1 {
		t.Fatalf("members: %v, %v", members, err)
	}
	// Sessions ending never stop the node (unlike stdio's EOF).
	select {
	case why := <-done:
		t.Fatalf("the node was asked to stop: %s", why)
	default:
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after Close: %v", err)
	}
}

func TestControlSocketRefusesAFileInTheWay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	if err := os.WriteFile(path, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := control.NewServer(control.Target{}).ServeSocket(path); err == nil {
		t.Fatal("a regular file was replaced by the socket")
	}
	if b, _ := os.ReadFile(path); string(b) != "mine" {
		t.Fatal("the file in the way was changed")
	}
}
