package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/arsenal-go/arsenal/internal/clusterstate"
	"github.com/arsenal-go/arsenal/ops"
)

// Each local cluster ('arsenal dev', every 'arsenal cluster') has an
// operator token of its own, kept in that cluster's state directory, and
// the CLI sends a token only to an address of the cluster it belongs to:
// never to whatever else listens on a loopback port.

// Files in a cluster's state directory.
const (
	operatorTokenFile = "operator-token" // the token, for the CLI (0600)
	nodeTokensFile    = "tokens"         // "TOKEN operator NAME", for the nodes' --tokens-file (0600)
	devHTTPFile       = "http"           // arsenal dev: the nodes' HTTP addresses, one a line
	devOwnerFile      = "owner"          // arsenal dev: pid and command line of the 'arsenal dev' that owns the directory (JSON)
)

// writeDevOwner records this process (pid and command line) as the
// owner of a dev cluster's state directory. A dev killed with SIGKILL
// cannot remove its directory; the owner file tells the next one (and
// the CLI) that it is stale.
func writeDevOwner(dir string) error {
	b, err := json.Marshal(devOwner{PID: os.Getpid(), Args: os.Args})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, devOwnerFile), b, 0o600)
}

type devOwner struct {
	PID  int      `json:"pid"`
	Args []string `json:"args"`
}

// devDirStale reports whether a dev cluster's state directory belongs to
// an 'arsenal dev' that is gone (killed before it could remove it): no
// process of its pid and command line runs (a zombie does not count).
func devDirStale(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, devOwnerFile))
	if err != nil {
		return false // no owner recorded: not known to be stale
	}
	var o devOwner
	return json.Unmarshal(b, &o) == nil && !clusterstate.Alive(o.PID, o.Args)
}

// removeStaleDevDirs removes the state directories of dev clusters whose
// 'arsenal dev' is gone, with their tokens.
func removeStaleDevDirs() {
	devs, err := os.ReadDir(devRoot())
	if err != nil {
		return
	}
	for _, d := range devs {
		if dir := filepath.Join(devRoot(), d.Name()); d.IsDir() && devDirStale(dir) {
			_ = os.RemoveAll(dir)
		}
	}
}

// devRoot holds one directory per running 'arsenal dev'.
func devRoot() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "arsenal", "dev")
}

// writeClusterToken makes a random operator token for the cluster whose
// state is in dir and returns the path of the nodes' tokens file.
func writeClusterToken(dir, owner string) (string, error) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("token directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, operatorTokenFile), []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	nodes := filepath.Join(dir, nodeTokensFile)
	if err := os.WriteFile(nodes, []byte(token+" operator "+owner+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("tokens file: %w", err)
	}
	return nodes, nil
}

// loopbackPort returns the port of a loopback address (a URL or
// host:port), or "".
func loopbackPort(addr string) string {
	host := addr
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		host = u.Host
	}
	h, port, err := net.SplitHostPort(host)
	if err != nil || !ops.DefaultOpenReads(net.JoinHostPort(h, port)) {
		return ""
	}
	return port
}

// clusterTokenFor finds the operator token of the local cluster one of
// whose nodes serves addr: an 'arsenal dev' or an 'arsenal cluster' in
// the default state directory. It returns "" when addr belongs to none
// of them, so a token never goes to another program's port. A cluster
// whose owner or node is gone does not claim the port: a cluster started
// since on the same port has its own token.
func clusterTokenFor(addr string) string {
	port := loopbackPort(addr)
	if port == "" {
		return ""
	}
	serves := func(httpAddr string) bool { return httpAddr != "" && loopbackPort(httpAddr) == port }
	read := func(dir string) string {
		b, err := os.ReadFile(filepath.Join(dir, operatorTokenFile))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if devs, err := os.ReadDir(devRoot()); err == nil {
		for _, d := range devs {
			dir := filepath.Join(devRoot(), d.Name())
			b, err := os.ReadFile(filepath.Join(dir, devHTTPFile))
			if err != nil || devDirStale(dir) {
				continue // a stale dir's port may be another cluster's now
			}
			for _, a := range strings.Fields(string(b)) {
				if serves(a) {
					return read(dir)
				}
			}
		}
	}
	if root, err := clusterstate.DefaultRoot(); err == nil {
		names, _ := clusterstate.List(root)
		for _, name := range names {
			dir := filepath.Join(root, name)
			st, err := clusterstate.Load(dir)
			if err != nil {
				continue
			}
			for _, n := range st.Nodes {
				if serves(n.HTTPAddr) && nodeRunning(n) {
					return read(dir)
				}
			}
		}
	}
	return ""
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
