// Package clusterstate keeps the on-disk state of a background local
// cluster started by `arsenal cluster start`: one directory per cluster
// holding state.json (names, OS pids, addresses, command lines), the
// secret file, one log file per node and the nodes' control sockets.
//
// The state directory is the only way the CLI finds a running cluster
// again: it never guesses ports, and it never acts on a process by name.
// A recorded pid counts as a live node only while that pid still runs the
// exact command line the state recorded for it (see Alive), so a pid the
// kernel has since reused for something else is never signalled.
package clusterstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"syscall"
	"time"
)

// FileName is the name of the state file inside a cluster's directory.
const FileName = "state.json"

// SchemaVersion is written into every state file.
const SchemaVersion = 1

// State is what state.json holds.
type State struct {
	Version    int    `json:"version"`
	Name       string `json:"name"`
	SecretFile string `json:"secret_file"`
	Binary     string `json:"binary"`
	// UserBinary: Binary is a user's binary built with arsenal.Main (its
	// flags come first; no "node" command word), from 'cluster start
	// --binary' or '--build'.
	UserBinary bool `json:"user_binary,omitempty"`

	Profile string `json:"profile"`
	// HTTPPort is the first node's HTTP port; 0: each node picks a free one.
	HTTPPort  int       `json:"http_port"`
	Demo      bool      `json:"demo"`
	CreatedAt time.Time `json:"created_at"`
	Nodes     []Node    `json:"nodes"`
	// Partition holds the node groups of the partition injected with
	// `arsenal cluster partition`, until `heal`.
	Partition [][]string `json:"partition,omitempty"`
}

// Node is one node of the cluster, as last started.
type Node struct {
	Name          string    `json:"name"`
	PID           int       `json:"pid"`
	NodeAddr      string    `json:"node_addr"`
	HTTPAddr      string    `json:"http_addr"`
	Incarnation   uint64    `json:"incarnation"`
	Args          []string  `json:"args"` // the full command line; Args[0] is the binary
	Log           string    `json:"log"`
	ControlSocket string    `json:"control_socket,omitempty"`
	StartedAt     time.Time `json:"started_at"`
	// StoppedAt is set when the CLI stopped or killed the node. A node
	// may also have died on its own; Alive is the authority.
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	Restarts  int        `json:"restarts"`
}

// ErrNotFound reports a directory without a state file.
var ErrNotFound = errors.New("no cluster state")

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidName checks a cluster name: it becomes a directory name and the
// nodes' --cluster.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("cluster name %q: want 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// DefaultRoot is the directory holding one directory per cluster:
// $XDG_STATE_HOME/arsenal/clusters, else ~/.local/state/arsenal/clusters.
func DefaultRoot() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "arsenal", "clusters"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: %w (set XDG_STATE_HOME or pass --dir)", err)
	}
	return filepath.Join(home, ".local", "state", "arsenal", "clusters"), nil
}

// Load reads the state of the cluster in dir.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNotFound, dir)
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	if st.Version > SchemaVersion {
		return nil, fmt.Errorf("%s: state version %d is newer than this binary understands (%d)", filepath.Join(dir, FileName), st.Version, SchemaVersion)
	}
	return &st, nil
}

// Save writes the state atomically (a temporary file renamed over the
// old one), so a reader never sees half a file.
func Save(dir string, st *State) error {
	st.Version = SchemaVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(append(b, '\n'))
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, FileName)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// List returns the names of the clusters under root (directories with a
// state file), sorted. A missing root has none.
func List(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), FileName)); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Find returns the node with the given name: its full name, or the part
// before '@', or its 1-based position.
func (st *State) Find(name string) (int, bool) {
	for i, n := range st.Nodes {
		if n.Name == name || shortName(n.Name) == name {
			return i, true
		}
	}
	var k int
	if _, err := fmt.Sscanf(name, "%d", &k); err == nil && fmt.Sprint(k) == name && k >= 1 && k <= len(st.Nodes) {
		return k - 1, true
	}
	return 0, false
}

// NodeNames lists the nodes' short names, for error messages.
func (st *State) NodeNames() []string {
	out := make([]string, len(st.Nodes))
	for i, n := range st.Nodes {
		out[i] = shortName(n.Name)
	}
	return out
}

func shortName(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] == '@' {
			return name[:i]
		}
	}
	return name
}

// ShortName is a node's name without its host part.
func ShortName(name string) string { return shortName(name) }

// Lock takes an exclusive lock on the cluster directory, so two commands
// changing one cluster (say, two starts) do not interleave. It blocks
// until the lock is free; release it with the returned function.
func Lock(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// LockFile is the name of the lock file Lock creates.
const LockFile = ".lock"
