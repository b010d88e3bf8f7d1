package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/cluster/crdt"
	"github.com/arsenal-go/arsenal/process"
)

// ReplicaName is the name of the registry's state in the cluster's
// replicated state (cluster.AddReplica).
const ReplicaName = "registry"

// Membership is what the registry needs of the cluster; *cluster.Cluster
// implements it. Tests use an in-memory double.
type Membership interface {
	LocalName() string
	Members() []cluster.Member
	Subscribe(buffer int) (<-chan cluster.Event, func())
	AddReplica(name string, r cluster.Replica) error
	RemoveReplica(name string)
	BroadcastKey(name, key string, msg []byte)
}

// ConflictAction is what the losing process of a name conflict gets.
type ConflictAction string

const (
	// ExitOnConflict sends the loser an exit signal with a *ConflictError
	// (text "name_conflict: …"): it dies unless it traps exits.
	ExitOnConflict ConflictAction = "exit"
	// NotifyOnConflict sends the loser a ConflictMsg and lets it live.
	NotifyOnConflict ConflictAction = "message"
)

// Config configures a Registry. Zero values take the defaults noted.
type Config struct {
	// OnConflict is ExitOnConflict when empty.
	OnConflict ConflictAction
	// ReapAfter: the entries of a node that has been dead (in this node's
	// view) this long are deleted for good. Until then they are only
	// hidden, so that after a healed partition they come back. Default
	// 10 minutes. Entries of a node that left, or restarted with a new
	// incarnation, are deleted at once.
	ReapAfter time.Duration
	// TombstoneTTL is how long a deleted entry is kept so that an older
	// copy of the registration cannot come back through a slow peer.
	// Default 1 hour. See doc.go for what a longer partition can do.
	TombstoneTTL time.Duration
	// SweepInterval is how often the registry re-reads the membership,
	// reaps and collects tombstones. Default 1 s.
	SweepInterval time.Duration
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	switch c.OnConflict {
	case "", ExitOnConflict, NotifyOnConflict:
	default:
		errs = append(errs, fmt.Errorf("registry: OnConflict %q: want exit or message", c.OnConflict))
	}
	if c.ReapAfter < 0 || c.TombstoneTTL < 0 || c.SweepInterval < 0 {
		errs = append(errs, errors.New("registry: negative duration"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.OnConflict == "" {
		c.OnConflict = ExitOnConflict
	}
	if c.ReapAfter == 0 {
		c.ReapAfter = 10 * time.Minute
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = time.Hour
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Errors.
var (
	// ErrNameTaken: the name resolves to a live process, or its owner's
	// node is not known yet.
	ErrNameTaken = errors.New("name already registered")
	// ErrNotFound: no process is registered under the name.
	ErrNotFound = errors.New("name not registered")
	// ErrNotLocal: only processes of this node can be registered here, and
	// only this node can unregister them.
	ErrNotLocal = errors.New("not a process of this node")
	// ErrBadName: a name is 1 to 255 bytes.
	ErrBadName = errors.New("invalid name")
	// ErrNameConflict is what a *ConflictError unwraps to.
	ErrNameConflict = errors.New("name_conflict")
	// ErrStopped: the registry was stopped.
	ErrStopped = errors.New("registry stopped")
)

// NotFoundError is returned by lookups of unknown names. Its code maps to
// HTTP 404 in the operations layer.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("%v: %q", ErrNotFound, e.Name) }
func (e *NotFoundError) Unwrap() error { return ErrNotFound }
func (e *NotFoundError) Code() string  { return "not_found" }

// ConflictError is the exit reason of a process that lost its name in a
// conflict (with ExitOnConflict).
type ConflictError struct {
	Name   string
	Winner process.PID
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("name_conflict: %q is registered to %s", e.Name, e.Winner)
}
func (e *ConflictError) Unwrap() error { return ErrNameConflict }

// ConflictMsg is the message a losing process gets with NotifyOnConflict.
type ConflictMsg struct {
	Name   string
	Winner process.PID
}

// Registration is a live name as a lookup returns it.
type Registration struct {
	Name string            `json:"name"`
	PID  process.PID       `json:"pid"`
	Node string            `json:"node"`
	Meta map[string]string `json:"meta,omitempty"`
	// Gen and RegisteredAt identify the registration (see doc.go).
	Gen          uint64    `json:"gen"`
	RegisteredAt time.Time `json:"registered_at"`
}

// Registry is this node's replica of the cluster-wide registry.
type Registry struct {
	rt   *process.Runtime
	ms   Membership
	self string
	inc  uint64
	cfg  Config
	log  *slog.Logger

	mu      sync.RWMutex
	state   State
	owners  map[string]map[string]struct{} // node → names whose entry names a PID there
	members map[string]memberView          // the membership, as last read
	shown   map[string]process.PID         // name → PID this node last reported visible
	watches map[string]*watch              // name → this node's live registration
	clock   crdt.Clock                     // hybrid logical clock
	stopped bool

	feed feed

	stop   chan struct{}
	wg     sync.WaitGroup
	unsub  func()
	events <-chan cluster.Event
}

type memberView struct {
	status  cluster.Status
	inc     uint64
	since   time.Time
	removed bool // dead past the cluster's removal margin (cluster.Member.Removed)
}

type watch struct {
	entry  *Entry
	cancel func()
}

// Start starts the registry of one node: rt is its runtime, ms its
// membership (a *cluster.Cluster).
func Start(rt *process.Runtime, ms Membership, cfg Config) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &Registry{
		rt: rt, ms: ms, self: rt.Node(), inc: rt.Incarnation(), cfg: cfg,
		log:     cfg.Logger.With("component", "registry"),
		state:   State{},
		owners:  map[string]map[string]struct{}{},
		members: map[string]memberView{},
		shown:   map[string]process.PID{},
		watches: map[string]*watch{},
		stop:    make(chan struct{}),
	}
	if ms.LocalName() != r.self {
		return nil, fmt.Errorf("registry: runtime node %q is not the cluster's %q", r.self, ms.LocalName())
	}
	r.events, r.unsub = ms.Subscribe(1024)
	r.refreshMembers()
	if err := ms.AddReplica(ReplicaName, (*replica)(r)); err != nil {
		r.unsub()
		return nil, err
	}
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

// Stop deletes this node's registrations (telling the peers, best effort),
// detaches the registry from the cluster and ends its goroutines. The
// processes keep running.
func (r *Registry) Stop() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	var out []*Entry
	for name, w := range r.watches {
		w.cancel()
		if cur := r.state[name]; cur != nil && !cur.Deleted && sameRegistration(cur, w.entry) {
			t := r.tombstone(cur, "node_stopped")
			r.state[name] = t
			out = append(out, t)
		}
	}
	clear(r.watches)
	r.stopped = true
	r.mu.Unlock()
	r.broadcast(out)
	r.ms.RemoveReplica(ReplicaName)
	close(r.stop)
	r.unsub()
	r.wg.Wait()
	r.feed.close()
}

// Subscribe returns the registry's events from now on, and a function
// that ends the subscription. A subscriber whose buffer is full misses
// events (a gap in Seq); DroppedEvents counts them.
func (r *Registry) Subscribe(buffer int) (<-chan Event, func()) { return r.feed.subscribe(buffer) }

// DroppedEvents counts events dropped for slow subscribers.
func (r *Registry) DroppedEvents() uint64 { return r.feed.Dropped() }

// ---- the API ----

func validName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("%w %q: must be 1 to 255 bytes", ErrBadName, name)
	}
	return nil
}

// Register registers pid, a live process of this node, under name, with
// optional metadata. The name dies with the process, with Unregister, and
// with this node. It fails with ErrNameTaken if the name resolves to a live
// process (or to one on a node this node does not know yet). If the name's
// holder is on a node that is down, the registration takes the name over
// (see doc.go).
func (r *Registry) Register(name string, pid process.PID, meta map[string]string) error {
	if err := validName(name); err != nil {
		return err
	}
	if pid.Node != r.self || pid.Incarnation != r.inc {
		return fmt.Errorf("register %q: %w: %s", name, ErrNotLocal, pid)
	}
	if !r.rt.Alive(pid) {
		return fmt.Errorf("register %q: %w: %s", name, process.NoProc, pid)
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return ErrStopped
	}
	gen := uint64(1)
	if cur := r.state[name]; cur != nil {
		if !cur.Deleted {
			switch st, _ := r.ownerState(cur); st {
			case ownerUp:
				r.mu.Unlock()
				return fmt.Errorf("%w: %q is %s", ErrNameTaken, name, cur.PID)
			case ownerPending:
				r.mu.Unlock()
				return fmt.Errorf("%w: %q is %s, on a node this node does not know yet", ErrNameTaken, name, cur.PID)
			}
		}
		gen = cur.Gen + 1
	}
	e := &Entry{Name: name, Gen: gen, TS: r.tick(), PID: pid, Meta: maps.Clone(meta)}
	out := r.applyLocked([]*Entry{e}, true)
	r.mu.Unlock()
	r.after(out)
	return nil
}

// Unregister removes a registration of a process of this node. It returns
// ErrNotFound if the name is not registered, ErrNotLocal if its process is
// on another node.
func (r *Registry) Unregister(name string) error {
	r.mu.Lock()
	cur := r.state[name]
	if cur == nil || cur.Deleted {
		r.mu.Unlock()
		return &NotFoundError{Name: name}
	}
	if cur.PID.Node != r.self || cur.PID.Incarnation != r.inc {
		r.mu.Unlock()
		return fmt.Errorf("unregister %q: %w: it is %s", name, ErrNotLocal, cur.PID)
	}
	out := r.applyLocked([]*Entry{r.tombstone(cur, "unregistered")}, true)
	r.mu.Unlock()
	r.after(out)
	return nil
}

// Whereis returns the PID registered under name, if it is visible from
// this node (registered, not deleted, its node up).
func (r *Registry) Whereis(name string) (process.PID, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e := r.state[name]; e != nil && r.visible(e) {
		return e.PID, true
	}
	return process.PID{}, false
}

// Lookup is Whereis with the registration's metadata.
func (r *Registry) Lookup(name string) (Registration, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e := r.state[name]; e != nil && r.visible(e) {
		return registration(e), true
	}
	return Registration{}, false
}

func registration(e *Entry) Registration {
	return Registration{Name: e.Name, PID: e.PID, Node: e.PID.Node, Meta: maps.Clone(e.Meta), Gen: e.Gen,
		RegisteredAt: time.Unix(0, int64(e.TS))}
}

// Filter selects registrations for List. Empty fields match everything.
type Filter struct {
	// Name is a regular expression on the name (unanchored).
	Name string
	// Node keeps registrations of processes on this node.
	Node string
	// Meta keeps registrations whose metadata has every key with the
	// given value ("" matches any value of the key).
	Meta map[string]string
}

// List returns the visible registrations that match f, sorted by name.
func (r *Registry) List(f Filter) ([]Registration, error) {
	var re *regexp.Regexp
	if f.Name != "" {
		var err error
		if re, err = regexp.Compile(f.Name); err != nil {
			return nil, fmt.Errorf("name pattern: %w", err)
		}
	}
	r.mu.RLock()
	var out []Registration
	for name, e := range r.state {
		if !r.visible(e) || (f.Node != "" && e.PID.Node != f.Node) || (re != nil && !re.MatchString(name)) {
			continue
		}
		ok := true
		for k, v := range f.Meta {
			if got, has := e.Meta[k]; !has || (v != "" && got != v) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, registration(e))
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Registration) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Count returns the number of visible registrations.
func (r *Registry) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, e := range r.state {
		if r.visible(e) {
			n++
		}
	}
	return n
}

// Send sends msg to the process registered under name, wherever it runs.
func (r *Registry) Send(name string, msg any) error {
	pid, ok := r.Whereis(name)
	if !ok {
		return &NotFoundError{Name: name}
	}
	r.rt.Send(pid, msg)
	return nil
}

// Call calls the process registered under name, wherever it runs.
func (r *Registry) Call(ctx context.Context, name string, req any) (any, error) {
	pid, ok := r.Whereis(name)
	if !ok {
		return nil, &NotFoundError{Name: name}
	}
	return r.rt.Call(ctx, pid, req)
}

// Entries returns a copy of the replicated state, tombstones and hidden
// entries included, sorted by name (for diagnostics and tests).
func (r *Registry) Entries() []Entry {
	r.mu.RLock()
	out := make([]Entry, 0, len(r.state))
	for _, e := range r.state {
		c := *e
		c.Meta = maps.Clone(e.Meta)
		out = append(out, c)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Digest summarises the visible registrations (name → PID) for comparing
// nodes.
func (r *Registry) Digest() map[string]process.PID {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]process.PID{}
	for name, e := range r.state {
		if r.visible(e) {
			out[name] = e.PID
		}
	}
	return out
}

// ---- visibility ----

type ownerStatus int

const (
	ownerUp      ownerStatus = iota
	ownerPending             // the owner's node (or this incarnation of it) is not known yet
	ownerDown                // dead in this node's view: hidden, reaped after ReapAfter
	ownerGone                // left, or restarted with a new incarnation: reaped at once
)

// ownerState says how this node sees the node of e's process, and since
// when it is down.
func (r *Registry) ownerState(e *Entry) (ownerStatus, time.Time) {
	if e.PID.Node == r.self {
		switch {
		case e.PID.Incarnation == r.inc:
			return ownerUp, time.Time{}
		case e.PID.Incarnation < r.inc:
			return ownerGone, time.Time{}
		}
		return ownerPending, time.Time{}
	}
	m, ok := r.members[e.PID.Node]
	if !ok {
		return ownerPending, time.Time{}
	}
	switch {
	case m.inc > e.PID.Incarnation:
		return ownerGone, time.Time{}
	case m.inc < e.PID.Incarnation:
		return ownerPending, time.Time{}
	}
	switch m.status {
	case cluster.StatusAlive, cluster.StatusSuspect:
		return ownerUp, time.Time{}
	case cluster.StatusLeft:
		return ownerGone, m.since
	}
	return ownerDown, m.since
}

func (r *Registry) visible(e *Entry) bool {
	if e.Deleted {
		return false
	}
	st, _ := r.ownerState(e)
	return st == ownerUp
}

// ---- changes ----

// effects are what a change asks for once the lock is released.
type effects struct {
	broadcast []*Entry
	exits     []exitOrder
	watch     []*Entry
}

type exitOrder struct {
	pid    process.PID
	name   string
	winner process.PID
}

func (r *Registry) tick() uint64 { return r.clock.Tick() }

func (r *Registry) tombstone(e *Entry, reason string) *Entry {
	t := *e
	t.Deleted, t.DelTS, t.DelBy, t.Reason = true, r.tick(), r.self, reason
	return &t
}

// applyLocked merges entries (local writes, or a peer's delta or state),
// then brings the local side effects up to date for every name that
// changed: events, watches, conflicts, re-assertions. rebroadcast says
// whether the effective changes go out as deltas.
func (r *Registry) applyLocked(in []*Entry, rebroadcast bool) effects {
	var ef effects
	var changed []string
	horizon := r.clock.Horizon(r.cfg.TombstoneTTL)
	for _, e := range in {
		r.clock.Observe(e.Stamp())
		old := r.state[e.Name]
		if !r.state.Accept(e, horizon) {
			continue
		}
		r.reindex(old, e)
		if old != nil && !old.Deleted && !e.Deleted && old.Gen == e.Gen && !sameRegistration(old, e) {
			r.conflictEvent(e, old)
		}
		changed = append(changed, e.Name)
		if rebroadcast {
			ef.broadcast = append(ef.broadcast, e)
		}
	}
	for _, name := range changed {
		r.settleLocked(name, &ef)
	}
	return ef
}

func (r *Registry) conflictEvent(winner, loser *Entry) {
	r.feed.publish(Event{Type: Conflict, Name: winner.Name, PID: loser.PID, Meta: loser.Meta, Winner: winner.PID, Reason: "name_conflict"})
}

func (r *Registry) reindex(old, e *Entry) {
	if old != nil && old.PID.Node != e.PID.Node {
		if s := r.owners[old.PID.Node]; s != nil {
			delete(s, old.Name)
			if len(s) == 0 {
				delete(r.owners, old.PID.Node)
			}
		}
	}
	s := r.owners[e.PID.Node]
	if s == nil {
		s = map[string]struct{}{}
		r.owners[e.PID.Node] = s
	}
	s[e.Name] = struct{}{}
}

// settleLocked brings one name's local side up to date with its entry:
// this node's watch of its own registration, conflicts it lost, and what
// the name resolves to here.
func (r *Registry) settleLocked(name string, ef *effects) {
	e := r.state[name]
	if w := r.watches[name]; w != nil && e != nil {
		mine := sameRegistration(w.entry, e)
		switch {
		case mine && !e.Deleted:
			// Still ours.
		case mine && (e.DelBy == r.self || !r.rt.Alive(w.entry.PID)):
			// Deleted here, or its process is gone anyway.
			w.cancel()
			delete(r.watches, name)
		case mine:
			// A peer deleted it, believing this node lost (a partition
			// longer than ReapAfter). The process lives: register it again.
			re := &Entry{Name: name, Gen: e.Gen + 1, TS: r.tick(), PID: w.entry.PID, Meta: w.entry.Meta}
			r.log.Info("registry: a registration deleted by a peer is re-asserted", "name", name, "pid", re.PID, "deleted_by", e.DelBy)
			r.state[name] = re
			r.reindex(e, re)
			w.entry = re
			ef.broadcast = append(ef.broadcast, re)
			e = re
		default:
			// Another registration won: this node's process lost the name.
			w.cancel()
			delete(r.watches, name)
			ef.exits = append(ef.exits, exitOrder{pid: w.entry.PID, name: name, winner: e.PID})
			if e.Deleted || e.Gen != w.entry.Gen {
				// applyLocked reports two live registrations of one
				// generation; report the other cases here.
				r.conflictEvent(e, w.entry)
			}
		}
	}
	if e != nil && !e.Deleted && e.PID.Node == r.self && e.PID.Incarnation == r.inc && r.watches[name] == nil {
		// A live registration of this node without a watch: a fresh local
		// write, or one that came back from a peer. Watch it once the lock
		// is released; the watch deletes it if the process is gone.
		r.watches[name] = &watch{entry: e, cancel: func() {}}
		ef.watch = append(ef.watch, e)
	}
	r.showLocked(name)
}

// showLocked reports a change of what name resolves to on this node.
func (r *Registry) showLocked(name string) {
	e := r.state[name]
	var vis process.PID
	if e != nil && r.visible(e) {
		vis = e.PID
	}
	was := r.shown[name]
	if vis == was {
		return
	}
	if !was.IsZero() {
		r.feed.publish(Event{Type: Unregistered, Name: name, PID: was, Reason: r.whyGone(e, was)})
	}
	if vis.IsZero() {
		delete(r.shown, name)
		return
	}
	r.shown[name] = vis
	r.feed.publish(Event{Type: Registered, Name: name, PID: vis, Meta: maps.Clone(e.Meta)})
}

func (r *Registry) whyGone(e *Entry, was process.PID) string {
	switch {
	case e == nil:
		return "reaped"
	case e.PID != was:
		return "replaced"
	case e.Deleted:
		return e.Reason
	}
	switch st, _ := r.ownerState(e); st {
	case ownerDown:
		return "node_down"
	case ownerGone:
		if m, ok := r.members[e.PID.Node]; ok && m.status == cluster.StatusLeft {
			return "node_left"
		}
		return "node_restarted"
	}
	return "unknown"
}

// after runs the effects of a change outside the lock.
func (r *Registry) after(ef effects) {
	r.broadcast(ef.broadcast)
	for _, e := range ef.watch {
		name, pid := e.Name, e.PID
		cancel := r.rt.Watch(pid, func(d process.DownMsg) { r.processExited(name, pid, d.Reason) })
		r.mu.Lock()
		if w := r.watches[name]; w != nil && w.entry.PID == pid {
			w.cancel = cancel
			r.mu.Unlock()
		} else {
			r.mu.Unlock()
			cancel()
		}
	}
	for _, x := range ef.exits {
		if r.cfg.OnConflict == NotifyOnConflict {
			r.rt.Send(x.pid, ConflictMsg{Name: x.name, Winner: x.winner})
		} else {
			r.rt.Exit(x.pid, &ConflictError{Name: x.name, Winner: x.winner})
		}
		r.log.Info("registry: name conflict lost", "name", x.name, "loser", x.pid, "winner", x.winner, "action", string(r.cfg.OnConflict))
	}
}

func (r *Registry) broadcast(es []*Entry) {
	for _, e := range es {
		r.ms.BroadcastKey(ReplicaName, e.Name, crdt.Encode([]*Entry{e}))
	}
}

// processExited deletes a registration whose process exited.
func (r *Registry) processExited(name string, pid process.PID, reason process.Reason) {
	r.mu.Lock()
	w := r.watches[name]
	cur := r.state[name]
	if r.stopped || w == nil || w.entry.PID != pid || cur == nil || cur.Deleted || !sameRegistration(cur, w.entry) {
		r.mu.Unlock()
		return
	}
	why := "exit"
	if errors.Is(reason, ErrNameConflict) {
		why = "conflict"
	} else if errors.Is(reason, process.NoProc) {
		why = "noproc"
	}
	out := r.applyLocked([]*Entry{r.tombstone(cur, why)}, true)
	r.mu.Unlock()
	r.after(out)
}

// ---- membership ----

func (r *Registry) loop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case _, ok := <-r.events:
			if !ok {
				return
			}
			// Drain what is queued, then re-read the membership once.
			for more := true; more; {
				select {
				case _, ok := <-r.events:
					if !ok {
						return
					}
				default:
					more = false
				}
			}
			r.membershipChanged()
		case <-t.C:
			r.membershipChanged()
			r.sweep()
		}
	}
}

func (r *Registry) refreshMembers() map[string]bool {
	ms := r.ms.Members()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.setMembersLocked(ms)
}

// setMembersLocked installs a new membership view and returns the nodes
// whose view changed.
func (r *Registry) setMembersLocked(ms []cluster.Member) map[string]bool {
	next := make(map[string]memberView, len(ms))
	for _, m := range ms {
		next[m.Name] = memberView{status: m.Status, inc: m.Incarnation, since: m.Since, removed: m.Removed}
	}
	changed := map[string]bool{}
	for n, v := range next {
		if old, ok := r.members[n]; !ok || old.status != v.status || old.inc != v.inc || old.removed != v.removed {
			changed[n] = true
		}
	}
	for n := range r.members {
		if _, ok := next[n]; !ok {
			changed[n] = true
		}
	}
	r.members = next
	return changed
}

// membershipChanged re-reads the membership and updates what the names of
// the nodes that changed resolve to.
func (r *Registry) membershipChanged() {
	ms := r.ms.Members()
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	var ef effects
	for n := range r.setMembersLocked(ms) {
		for name := range r.owners[n] {
			r.showLocked(name)
		}
	}
	r.reapLocked(&ef)
	r.mu.Unlock()
	r.after(ef)
}

// reapLocked deletes the entries of nodes that are gone for good, down
// for longer than ReapAfter, or removed by the cluster (dead past its
// removal margin on a side that keeps running: the same live-member rule
// as the split-brain decisions).
func (r *Registry) reapLocked(ef *effects) {
	now := time.Now()
	var dead []*Entry
	for node, names := range r.owners {
		if node == r.self {
			continue
		}
		for name := range names {
			e := r.state[name]
			if e == nil || e.Deleted {
				continue
			}
			st, since := r.ownerState(e)
			switch {
			case st == ownerGone:
				reason := "node_restarted"
				if m, ok := r.members[node]; ok && m.status == cluster.StatusLeft {
					reason = "node_left"
				}
				dead = append(dead, r.tombstone(e, reason))
			case st == ownerDown && r.members[node].removed:
				dead = append(dead, r.tombstone(e, "node_removed"))
			case st == ownerDown && now.Sub(since) >= r.cfg.ReapAfter:
				dead = append(dead, r.tombstone(e, "reaped"))
			}
		}
	}
	// Registrations of an earlier incarnation of this node.
	for name := range r.owners[r.self] {
		if e := r.state[name]; e != nil && !e.Deleted && e.PID.Incarnation < r.inc {
			dead = append(dead, r.tombstone(e, "node_restarted"))
		}
	}
	if len(dead) > 0 {
		x := r.applyLocked(dead, true)
		ef.broadcast = append(ef.broadcast, x.broadcast...)
		ef.exits = append(ef.exits, x.exits...)
		ef.watch = append(ef.watch, x.watch...)
	}
}

// sweep collects tombstones older than TombstoneTTL and checks that every
// live registration of this node still has its process.
func (r *Registry) sweep() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	for _, e := range r.state.Retire(r.clock.Horizon(r.cfg.TombstoneTTL), nil) {
		if s := r.owners[e.PID.Node]; s != nil {
			delete(s, e.Name)
			if len(s) == 0 {
				delete(r.owners, e.PID.Node)
			}
		}
	}
	var gone []*Entry
	for name, w := range r.watches {
		if !r.rt.Alive(w.entry.PID) {
			if cur := r.state[name]; cur != nil && !cur.Deleted && sameRegistration(cur, w.entry) {
				gone = append(gone, r.tombstone(cur, "exit"))
			}
		}
	}
	var ef effects
	if len(gone) > 0 {
		ef = r.applyLocked(gone, true)
	}
	r.mu.Unlock()
	r.after(ef)
}

// ---- replication (cluster.Replica) ----

type replica Registry

func (rp *replica) LocalState() []byte {
	r := (*Registry)(rp)
	r.mu.RLock()
	es := r.state.Values()
	r.mu.RUnlock()
	return crdt.Encode(es)
}

func (rp *replica) MergeRemoteState(b []byte) { (*Registry)(rp).merge(b, false) }
func (rp *replica) NotifyMsg(b []byte)        { (*Registry)(rp).merge(b, true) }

func (r *Registry) merge(b []byte, delta bool) {
	es, err := crdt.Decode[Entry](b)
	if err != nil {
		r.log.Warn("registry: state from a peer refused", "delta", delta, "err", err)
		return
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	ef := r.applyLocked(es, delta)
	r.mu.Unlock()
	r.after(ef)
}
