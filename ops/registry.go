package ops

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Registry holds the operations a server offers.
type Registry struct {
	mu      sync.Mutex
	byName  map[string]*entry
	scratch *http.ServeMux // every route so far, to catch conflicts at Register
}

// entry is a registered operation with its compiled parameters.
type entry struct {
	op     *Operation
	params []*param
	byName map[string]*param
	body   bool // has body parameters
	audit  bool // calls are written to the audit log
	resp   reflect.Type
}

// Built-in routes, served by every Handler.
const (
	CataloguePath = "/api/v1/arsenal/operations"
	DocsPath      = "/api/v1/arsenal/docs"
)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{byName: map[string]*entry{}, scratch: http.NewServeMux()}
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	r.scratch.Handle("GET "+CataloguePath, nop)
	r.scratch.Handle("GET "+DocsPath, nop)
	return r
}

var (
	opNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
	categoryRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	wildcardRE = regexp.MustCompile(`^\{([a-z][a-z0-9_]*)\}$`)
)

// CLIVerb is the CLI verb of an operation: its name with "." and "_"
// turned into "-", so "cluster.topology" is "cluster-topology".
func CLIVerb(name string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(name)
}

// Register checks an operation's description and adds it. It refuses a
// description that is wrong in any way rather than guess: a bad name, a
// duplicate, a route that conflicts with another, a path wildcard without
// its parameter or a path parameter without its wildcard, a default that
// has the wrong Go type or breaks its own constraints, a bad pattern, a
// dangerous operation open to viewers.
//
// The registry keeps a copy of op with the implied values filled in
// (Timeout, Role, Idempotent for GET, Required for path parameters).
func (r *Registry) Register(op Operation) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("ops: register %q: %w", op.Name, err)
		}
	}()
	if !opNameRE.MatchString(op.Name) {
		return fmt.Errorf("name must be lower case words joined by . or _ (%s)", opNameRE)
	}
	if !categoryRE.MatchString(op.Category) {
		return fmt.Errorf("category %q must be one lower-case word such as cluster, process, supervisor, registry, tracing or system", op.Category)
	}
	if strings.TrimSpace(op.Summary) == "" {
		return errors.New("summary is empty")
	}
	switch op.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return fmt.Errorf("method %q is not GET, POST, PUT, PATCH or DELETE", op.Method)
	}
	if (op.Run == nil) == (op.Stream == nil) {
		return errors.New("exactly one of Run and Stream must be set")
	}
	if op.Stream != nil && op.Method != http.MethodGet {
		return errors.New("a Stream operation must use GET")
	}
	if op.Timeout < 0 {
		return errors.New("timeout is negative")
	}
	if op.Timeout == 0 {
		op.Timeout = DefaultTimeout
	}
	if op.Method == http.MethodGet {
		op.Idempotent = true
	}
	switch op.Role {
	case "":
		op.Role = RoleOperator
		if op.Method == http.MethodGet && !op.Dangerous {
			op.Role = RoleViewer
		}
	case RoleViewer, RoleOperator:
	default:
		return fmt.Errorf("role %q is not viewer or operator", op.Role)
	}
	if op.Dangerous && op.Role != RoleOperator {
		return errors.New("a dangerous operation needs role operator")
	}

	if op.Run != nil && op.Response == nil {
		return errors.New("Response is not set: give a value of the type Run answers with, for the document")
	}
	if op.Stream != nil && len(op.Events) == 0 {
		return errors.New("Events is empty: name every event the Stream sends with a value of its data type")
	}
	{
		g := newSchemaGen()
		if op.Response != nil {
			if _, err := g.schema(answerType(op.Response)); err != nil {
				return fmt.Errorf("response: %w", err)
			}
		}
		for name, v := range op.Events {
			if _, err := g.schema(answerType(v)); err != nil {
				return fmt.Errorf("event %q: %w", name, err)
			}
		}
	}

	wild, err := pathWildcards(op.Path)
	if err != nil {
		return err
	}
	e := &entry{byName: map[string]*param{}, audit: op.Dangerous || !op.Idempotent || op.Sensitive, resp: answerType(op.Response)}
	params := make([]Param, 0, len(op.Params))
	for _, p := range op.Params {
		c, err := compileParam(p, op.Method)
		if err != nil {
			return fmt.Errorf("param %q: %w", p.Name, err)
		}
		if e.byName[c.Name] != nil {
			return fmt.Errorf("param %q is declared twice", c.Name)
		}
		if c.In == InPath && !slices.Contains(wild, c.Name) {
			return fmt.Errorf("path param %q is not a {%s} segment of %s", c.Name, c.Name, op.Path)
		}
		e.byName[c.Name] = c
		e.params = append(e.params, c)
		e.body = e.body || c.In == InBody
		params = append(params, c.Param)
	}
	for _, w := range wild {
		if p := e.byName[w]; p == nil || p.In != InPath {
			return fmt.Errorf("path segment {%s} has no param %q with In: path", w, w)
		}
	}
	op.Params = params
	e.op = &op

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byName[op.Name] != nil {
		return errors.New("an operation with this name is already registered")
	}
	if err := tryHandle(r.scratch, op.Method+" "+op.Path); err != nil {
		return err
	}
	r.byName[op.Name] = e
	return nil
}

// pathWildcards checks a path and returns its wildcard names. Paths are
// under /api/, made of literal segments and whole-segment {name}
// wildcards, with no trailing slash (which ServeMux would treat as a
// prefix matching every path below it).
func pathWildcards(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/api/") {
		return nil, fmt.Errorf("path %q must start with /api/", path)
	}
	if strings.HasSuffix(path, "/") {
		return nil, fmt.Errorf("path %q must not end with /", path)
	}
	var wild []string
	for _, seg := range strings.Split(path[1:], "/") {
		if seg == "" {
			return nil, fmt.Errorf("path %q has an empty segment", path)
		}
		if m := wildcardRE.FindStringSubmatch(seg); m != nil {
			if slices.Contains(wild, m[1]) {
				return nil, fmt.Errorf("path %q repeats {%s}", path, m[1])
			}
			wild = append(wild, m[1])
			continue
		}
		if strings.ContainsAny(seg, "{}?#% ") {
			return nil, fmt.Errorf("path segment %q must be literal or a whole {snake_case} wildcard", seg)
		}
	}
	return wild, nil
}

// tryHandle registers pattern in mux, turning ServeMux's panic on a
// conflicting pattern into an error.
func tryHandle(mux *http.ServeMux, pattern string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("route %s: %v", pattern, v)
		}
	}()
	mux.Handle(pattern, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	return nil
}

// MustRegister is Register for operations declared in code, where a bad
// description is a bug to fix before the program can run.
func (r *Registry) MustRegister(ops ...Operation) {
	for _, op := range ops {
		if err := r.Register(op); err != nil {
			panic(err)
		}
	}
}

// Operations returns the registered operations sorted by name.
func (r *Registry) Operations() []*Operation {
	es := r.entries()
	out := make([]*Operation, len(es))
	for i, e := range es {
		out[i] = e.op
	}
	return out
}

// Lookup returns the operation with the given name.
func (r *Registry) Lookup(name string) (*Operation, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byName[name]
	if !ok {
		return nil, false
	}
	return e.op, true
}

func (r *Registry) entries() []*entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*entry, 0, len(r.byName))
	for _, e := range r.byName {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int { return strings.Compare(a.op.Name, b.op.Name) })
	return out
}
