package main

import (
	"os"
	"path/filepath"
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
	if err := clusterstate.Save(cdir, &clusterstate.State{Name: "mine", Nodes: []clusterstate.Node{{Name: "node1@127.0.0.1", HTTPAddr: "127.0.0.1:6100"}}}); err != nil {
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
