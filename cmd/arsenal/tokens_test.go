package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arsenal-go/arsenal/internal/clusterstate"
)

// Each local cluster has its own token, and the CLI finds the one of the
// cluster an address belongs to, and none for another address.
func TestClusterTokenFor(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	devA := filepath.Join(devRoot(), "dev-aaaa")
	devB := filepath.Join(devRoot(), "dev-bbbb")
	for dir, addrs := range map[string]string{devA: "127.0.0.1:4100\n127.0.0.1:4101\n", devB: "127.0.0.1:5100\n"} {
		if _, err := writeClusterToken(dir, "dev"); err != nil {
			t.Fatal(err)
		}
		if err := writeDevOwner(dir); err != nil { // this test process: running
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, devHTTPFile), []byte(addrs), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root, err := clusterstate.DefaultRoot()
	if err != nil {
		t.Fatal(err)
	}
	cdir := filepath.Join(root, "mine")
	if _, err := writeClusterToken(cdir, "cluster mine"); err != nil {
		t.Fatal(err)
	}
	if err := clusterstate.Save(cdir, &clusterstate.State{Name: "mine", Nodes: []clusterstate.Node{{Name: "node1@127.0.0.1", HTTPAddr: "127.0.0.1:6100", PID: os.Getpid(), Args: os.Args}}}); err != nil {
		t.Fatal(err)
	}
	token := func(dir string) string {
		b, _ := os.ReadFile(filepath.Join(dir, operatorTokenFile))
		return string(b[:len(b)-1])
	}
	if token(devA) == token(devB) || token(devA) == token(cdir) {
		t.Fatal("two clusters share a token")
	}
	cases := []struct{ addr, want string }{
		{"http://127.0.0.1:4100", token(devA)},
		{"http://localhost:4101", token(devA)},
		{"127.0.0.1:5100", token(devB)},
		{"http://[::1]:6100", token(cdir)},
		{"http://127.0.0.1:7777", ""},   // another program's port
		{"http://10.1.2.3:4100", ""},    // not loopback
		{"http://example.com:4100", ""}, // not loopback
	}
	for _, c := range cases {
		if got := clusterTokenFor(c.addr); got != c.want {
			t.Errorf("%s: token %q, want %q", c.addr, got, c.want)
		}
	}
	// A second dev cluster going away takes only its own token.
	if err := os.RemoveAll(devB); err != nil {
		t.Fatal(err)
	}
	if clusterTokenFor("http://127.0.0.1:4100") != token(devA) {
		t.Fatal("the first cluster lost its token when the second one went")
	}
}

// A dev cluster killed before it could remove its state (its 'arsenal
// dev' is gone) and a stopped 'arsenal cluster' do not claim their old
// ports: the cluster running there now gets its own token, not a stale
// one (which would be a 401), and a new 'arsenal dev' removes the stale
// directory.
func TestClusterTokenForSkipsStaleClusters(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := gone.Process.Pid // exited and reaped: no such process now
	// "dev-0000" sorts first, so a search that took the first match would
	// find the stale one.
	stale, live := filepath.Join(devRoot(), "dev-0000"), filepath.Join(devRoot(), "dev-ffff")
	for _, dir := range []string{stale, live} {
		if _, err := writeClusterToken(dir, "dev"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, devHTTPFile), []byte("127.0.0.1:4100\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := writeDevOwner(dir); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(stale, devOwnerFile), []byte(fmt.Sprintf(`{"pid":%d,"args":["arsenal","dev"]}`, dead)), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := clusterstate.DefaultRoot()
	if err != nil {
		t.Fatal(err)
	}
	cdir := filepath.Join(root, "stopped")
	if _, err := writeClusterToken(cdir, "cluster stopped"); err != nil {
		t.Fatal(err)
	}
	if err := clusterstate.Save(cdir, &clusterstate.State{Name: "stopped", Nodes: []clusterstate.Node{{Name: "node1@127.0.0.1", HTTPAddr: "127.0.0.1:6100", PID: dead, Args: []string{"arsenal", "node"}}}}); err != nil {
		t.Fatal(err)
	}
	token := func(dir string) string {
		b, _ := os.ReadFile(filepath.Join(dir, operatorTokenFile))
		return strings.TrimSpace(string(b))
	}
	if got := clusterTokenFor("http://127.0.0.1:4100"); got != token(live) {
		t.Errorf("port 4100: token %q, want the running dev's %q (the stale one is %q)", got, token(live), token(stale))
	}
	if got := clusterTokenFor("http://127.0.0.1:6100"); got != "" {
		t.Errorf("port 6100 of a stopped cluster: token %q, want none", got)
	}
	removeStaleDevDirs()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale dev directory is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the running dev's directory went: %v", err)
	}
}
