package placement

import (
	"fmt"
	"slices"
	"sync"

	"github.com/arsenal-go/arsenal/process"
)

// Factory makes a fresh behaviour for one start of a child from its
// arguments. It runs on the node that starts the child; the arguments
// travel as bytes, so any node can start any child of a kind every node
// registered.
type Factory func(args []byte) (process.Behaviour, error)

var kinds struct {
	mu sync.RWMutex
	m  map[string]Factory
}

// RegisterKind registers a factory under name. Every node of a cluster
// must register the same kinds (register them in an init function or
// before starting the node's placement). Registering a name twice panics,
// as registering an HTTP pattern twice does.
func RegisterKind(name string, f Factory) {
	if name == "" || f == nil {
		panic("placement: RegisterKind needs a name and a factory")
	}
	kinds.mu.Lock()
	defer kinds.mu.Unlock()
	if kinds.m == nil {
		kinds.m = map[string]Factory{}
	}
	if _, dup := kinds.m[name]; dup {
		panic(fmt.Sprintf("placement: kind %q registered twice", name))
	}
	kinds.m[name] = f
}

// Kinds returns the registered kind names, sorted.
func Kinds() []string {
	kinds.mu.RLock()
	defer kinds.mu.RUnlock()
	out := make([]string, 0, len(kinds.m))
	for k := range kinds.m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func lookupKind(name string) (Factory, bool) {
	kinds.mu.RLock()
	defer kinds.mu.RUnlock()
	f, ok := kinds.m[name]
	return f, ok
}
