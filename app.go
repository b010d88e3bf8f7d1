package arsenal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"sync"

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/supervisor"
)

// App is what a user adds to a node: everything else (membership, links,
// registry, distributed supervisor, operations API, health, metrics, logs,
// the control channel) comes with it. Every node of a cluster must run the
// same App (same kinds, same message types).
type App struct {
	// Name names the application in --help, the default node and
	// cluster names, and the control channel's "ready" event. Default:
	// the program's base name.
	Name string
	// Description is the --help text; Usage its first line (default
	// "NAME [flags]").
	Description string
	Usage       string
	// Kinds are the behaviours the distributed supervisor can start by
	// name on any node (placement kinds), and that a harness can spawn.
	Kinds []Kind
	// Messages are the message types that travel between nodes (made
	// with Message[T]).
	Messages []MessageType
	// Trees are local supervision trees started on every node at boot,
	// in order, after the cluster services; they stop in reverse order.
	Trees []Tree
	// Singletons are distributed children that must run once in the
	// cluster: every node makes sure at boot that each exists, retrying
	// until its side of the cluster may start children. Give them a Name
	// to register them cluster-wide.
	Singletons []placement.ChildSpec
	// Operations adds the application's own operations to the
	// operations API (optional).
	Operations func(reg *ops.Registry, n *Node) error
	// Flags declares the application's own settings (optional); read
	// them in Start.
	Flags func(f *Flags)
	// Check validates the application's own settings (optional), with
	// the configuration: an error stops the node before it starts.
	Check func() error
	// Start runs last at boot (optional); an error stops the node.
	Start func(ctx context.Context, n *Node) error
	// Stop runs first at a graceful stop (optional).
	Stop func(ctx context.Context, n *Node)
}

// Kind is a behaviour the distributed supervisor starts by name.
type Kind struct {
	// Name is 1 to 100 letters, digits and . _ - / : characters.
	Name string
	// New makes a fresh behaviour for one start from the child's
	// arguments.
	New placement.Factory
}

// Tree is a local supervision tree.
type Tree struct {
	// Name, if set, is the local name of the tree's top supervisor.
	Name string
	// Spec returns the tree's specification on node n.
	Spec func(n *Node) supervisor.Spec
}

// MessageType is a message type registered with the codec (Message).
type MessageType struct {
	name     string
	typ      reflect.Type
	register func() error
}

// Message declares the message type T under name, for App.Messages: its
// values can then be sent to processes on other nodes (codec.Register).
func Message[T any](name string) MessageType {
	return MessageType{name: name, typ: reflect.TypeFor[T](), register: func() error { return codec.Register[T](name) }}
}

var kindNameRE = regexp.MustCompile(`^[A-Za-z0-9._/:-]{1,100}$`)

func (a App) name() string {
	if a.Name != "" {
		return a.Name
	}
	return filepath.Base(os.Args[0])
}

func (a App) description() string {
	if a.Description != "" {
		return a.Description
	}
	return fmt.Sprintf("Run one node of a %s cluster (an Arsenal node: docs/NODE.md).", a.name())
}

// Validate checks the application without registering anything: kind
// names valid and unique, factories set, message types named, trees with
// a Spec, singletons of a kind this App (or the process) has.
func (a App) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, k := range a.Kinds {
		switch {
		case !kindNameRE.MatchString(k.Name):
			errs = append(errs, fmt.Errorf("app: kind %d: name %q is invalid: want 1 to 100 letters, digits or . _ - / : characters", i, k.Name))
		case seen[k.Name]:
			errs = append(errs, fmt.Errorf("app: kind %q registered twice", k.Name))
		case k.New == nil:
			errs = append(errs, fmt.Errorf("app: kind %q has no New function", k.Name))
		}
		seen[k.Name] = true
	}
	msgs := map[string]reflect.Type{}
	for i, m := range a.Messages {
		switch {
		case m.register == nil:
			errs = append(errs, fmt.Errorf("app: message %d: make it with arsenal.Message[T](name)", i))
		case m.name == "":
			errs = append(errs, fmt.Errorf("app: message type %s has an empty name", m.typ))
		case msgs[m.name] != nil && msgs[m.name] != m.typ:
			errs = append(errs, fmt.Errorf("app: message name %q is given to %s and %s", m.name, msgs[m.name], m.typ))
		}
		msgs[m.name] = m.typ
	}
	for i, t := range a.Trees {
		if t.Spec == nil {
			errs = append(errs, fmt.Errorf("app: tree %d (%q) has no Spec", i, t.Name))
		}
	}
	ids := map[string]bool{}
	for _, s := range a.Singletons {
		if ids[s.ID] {
			errs = append(errs, fmt.Errorf("app: singleton %q listed twice", s.ID))
		}
		ids[s.ID] = true
		if s.ID == "" || len(s.ID) > 255 {
			errs = append(errs, fmt.Errorf("app: singleton id %q: want 1 to 255 bytes", s.ID))
		}
		if !seen[s.Kind] && !kindKnown(s.Kind) {
			errs = append(errs, fmt.Errorf("app: singleton %q: unknown kind %q (this app's kinds: %v)", s.ID, s.Kind, a.kindNames()))
		}
	}
	if a.Check != nil {
		if err := a.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a App) kindNames() []string {
	out := make([]string, len(a.Kinds))
	for i, k := range a.Kinds {
		out[i] = k.Name
	}
	sort.Strings(out)
	return out
}

// The kinds are process-wide (as in package placement): a kind registered
// by an App is kept with its factory, so that the same App can start
// several nodes in one process (the simulator, tests) while a different
// factory under a name in use is refused.
var kinds struct {
	mu sync.Mutex
	m  map[string]placement.Factory
}

func kindKnown(name string) bool {
	for _, k := range placement.Kinds() {
		if k == name {
			return true
		}
	}
	return false
}

// LookupKind returns the factory an App registered under name.
func LookupKind(name string) (placement.Factory, bool) {
	kinds.mu.Lock()
	defer kinds.mu.Unlock()
	f, ok := kinds.m[name]
	return f, ok
}

func sameFunc(a, b placement.Factory) bool {
	return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
}

// Register validates the App and registers its message types (package
// codec) and kinds (package placement) in this process, as Start does. A
// test process that talks to nodes of the App calls it (clustertest does,
// with Options.App) so that it can encode and decode their messages. It
// can be called any number of times.
func (a App) Register() error {
	if err := a.Validate(); err != nil {
		return err
	}
	return a.register()
}

// register registers the App's message types and kinds, after Validate.
func (a App) register() error {
	var errs []error
	for _, m := range a.Messages {
		if err := m.register(); err != nil {
			errs = append(errs, fmt.Errorf("app: message type %s: %w", m.typ, err))
		}
	}
	kinds.mu.Lock()
	defer kinds.mu.Unlock()
	if kinds.m == nil {
		kinds.m = map[string]placement.Factory{}
	}
	for _, k := range a.Kinds {
		if old, ok := kinds.m[k.Name]; ok {
			if !sameFunc(old, k.New) {
				errs = append(errs, fmt.Errorf("app: kind %q registered twice, with different New functions", k.Name))
			}
			continue
		}
		if kindKnown(k.Name) {
			errs = append(errs, fmt.Errorf("app: kind %q is already registered in package placement (placement.RegisterKind)", k.Name))
			continue
		}
		placement.RegisterKind(k.Name, k.New)
		kinds.m[k.Name] = k.New
	}
	return errors.Join(errs...)
}
