package clustertest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

// Real-process tests of the cluster registry and the distributed
// supervisor (placement). Each node keeps a history of its registry and
// placement events ("service_history"); the tests read the histories and
// check invariants on them: every copy of a child is an interval from its
// start to its stop (or to the kill of its node), every holding of a name
// by a process of the node that reports it is an interval too, and no two
// intervals of one child, or of one name, may overlap.

// serviceArgs are the flags of every node in these tests: decisions after
// 1 s of stable membership, and a 3 s removal margin, which covers the
// spread of failure detection between the two sides of a split on the
// fast profile (1.2–2.8 s measured, cluster/doc.go).
var serviceArgs = []string{"--stable-after", "1s", "--removal-margin", "3s"}

type plEvent struct {
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	ID     string    `json:"id"`
	PID    string    `json:"pid"`
	Node   string    `json:"node"`
	Reason string    `json:"reason"`
}

type regEvent struct {
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	Name   string    `json:"name"`
	PID    string    `json:"pid"`
	Reason string    `json:"reason"`
	Winner string    `json:"winner"`
}

type svcHistory struct {
	Registry  []regEvent `json:"registry"`
	Placement []plEvent  `json:"placement"`
}

type plChild struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Node   string `json:"node"`
	PID    string `json:"pid"`
	Status string `json:"status"`
}

type plState struct {
	Status struct {
		Up     bool   `json:"up"`
		Reason string `json:"reason"`
	} `json:"status"`
	Children []plChild         `json:"children"`
	Local    map[string]string `json:"local"`
}

func placementOf(n *clustertest.Node) (plState, error) {
	var s plState
	err := n.Do("placement", nil, &s)
	return s, err
}

func registryOf(n *clustertest.Node) (map[string]string, error) {
	var m map[string]string
	err := n.Do("registry", nil, &m)
	return m, err
}

func historyOf(t *testing.T, n *clustertest.Node) svcHistory {
	t.Helper()
	var h svcHistory
	n.MustDo("service_history", nil, &h)
	return h
}

func running(c *clustertest.Cluster) []*clustertest.Node {
	var out []*clustertest.Node
	for _, n := range c.Nodes() {
		if n.Alive() {
			out = append(out, n)
		}
	}
	return out
}

func waitAllUp(c *clustertest.Cluster) {
	c.Eventually(within, func() bool {
		for _, n := range running(c) {
			if s, err := placementOf(n); err != nil || !s.Status.Up {
				return false
			}
		}
		return true
	}, "not every node's split-brain decision is up")
}

func place(t *testing.T, n *clustertest.Node, id, name, strategy string) plChild {
	t.Helper()
	var ch plChild
	n.MustDo("place", map[string]any{"id": id, "name": name, "strategy": strategy}, &ch)
	if ch.PID == "" || ch.Node == "" {
		t.Fatalf("place %s on %s: %+v", id, n.Name, ch)
	}
	return ch
}

// settled reports whether every running node lists exactly ids, each
// running once on a running node, with the same PIDs everywhere; every
// child's name resolves to it on every node; and every node resolves every
// name alike. It returns the agreed children.
func settled(c *clustertest.Cluster, ids []string) (map[string]plChild, bool) {
	nodes := running(c)
	up := map[string]bool{}
	for _, n := range nodes {
		up[n.Name] = true
	}
	var ref map[string]plChild
	var refReg map[string]string
	runs := map[string]int{}
	for _, n := range nodes {
		s, err := placementOf(n)
		if err != nil || !s.Status.Up || len(s.Children) != len(ids) {
			return nil, false
		}
		got := map[string]plChild{}
		for _, ch := range s.Children {
			if ch.Status != "running" || !up[ch.Node] {
				return nil, false
			}
			got[ch.ID] = ch
		}
		for id, pid := range s.Local {
			if got[id].PID != pid || got[id].Node != n.Name {
				return nil, false
			}
			runs[id]++
		}
		if ref == nil {
			ref = got
		} else {
			for id, ch := range ref {
				if got[id] != ch {
					return nil, false
				}
			}
		}
		reg, err := registryOf(n)
		if err != nil {
			return nil, false
		}
		for _, ch := range got {
			if ch.Name != "" && reg[ch.Name] != ch.PID {
				return nil, false
			}
		}
		if refReg == nil {
			refReg = reg
		} else if !mapsEqual(reg, refReg) {
			return nil, false
		}
	}
	for _, id := range ids {
		if runs[id] != 1 {
			return nil, false
		}
	}
	return ref, true
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// opsCall calls the operations API of a node and decodes the data.
func opsCall(t *testing.T, c *clustertest.Cluster, n *clustertest.Node, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.URL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.Token())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var r struct{ Data map[string]any }
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, r.Data
}

// ---- the checker ----

type span struct {
	key, holder, node string
	start, end        time.Time // zero end: still open
}

// childSpans builds every copy of every child from the nodes' placement
// histories. killed gives the kill time of nodes killed with -9 (their
// open copies end there).
func childSpans(hists map[string]svcHistory, killed map[string]time.Time) []span {
	var out []span
	for node, h := range hists {
		open := map[string]int{}
		for _, e := range h.Placement {
			switch e.Type {
			case "started":
				open[e.PID] = len(out)
				out = append(out, span{key: e.ID, holder: e.PID, node: node, start: e.Time})
			case "stopped", "exited":
				if i, ok := open[e.PID]; ok {
					out[i].end = e.Time
					delete(open, e.PID)
				}
			}
		}
		if at, ok := killed[node]; ok {
			for _, i := range open {
				out[i].end = at
			}
		}
	}
	return out
}

// nameSpans builds every holding of a name by a process of the node that
// reports it, from the registry histories: from "registered" to the
// "unregistered" of that PID on its own node.
func nameSpans(hists map[string]svcHistory, killed map[string]time.Time) []span {
	var out []span
	for node, h := range hists {
		open := map[string]int{}
		for _, e := range h.Registry {
			if !strings.HasSuffix(e.PID, "@"+node) {
				continue // a process of another node
			}
			k := e.Name + " " + e.PID
			switch e.Type {
			case "registered":
				if _, ok := open[k]; !ok {
					open[k] = len(out)
					out = append(out, span{key: e.Name, holder: e.PID, node: node, start: e.Time})
				}
			case "unregistered":
				if i, ok := open[k]; ok {
					out[i].end = e.Time
					delete(open, k)
				}
			}
		}
		if at, ok := killed[node]; ok {
			for _, i := range open {
				out[i].end = at
			}
		}
	}
	return out
}

// overlaps flags two holders of one key at the same time: two live copies
// of a child, or a name registered to two processes at once.
func overlaps(spans []span) []string {
	by := map[string][]span{}
	for _, s := range spans {
		by[s.key] = append(by[s.key], s)
	}
	var bad []string
	for key, list := range by {
		sort.Slice(list, func(i, j int) bool { return list[i].start.Before(list[j].start) })
		for i := 1; i < len(list); i++ {
			for _, prev := range list[:i] {
				if prev.end.IsZero() || prev.end.After(list[i].start) {
					bad = append(bad, fmt.Sprintf("%s: %s on %s [%s, %s) overlaps %s on %s from %s", key, prev.holder, prev.node,
						prev.start.Format("15:04:05.000"), endText(prev.end), list[i].holder, list[i].node, list[i].start.Format("15:04:05.000")))
				}
			}
		}
	}
	sort.Strings(bad)
	return bad
}

func endText(t time.Time) string {
	if t.IsZero() {
		return "…"
	}
	return t.Format("15:04:05.000")
}

func histories(t *testing.T, c *clustertest.Cluster, saved map[string]svcHistory) map[string]svcHistory {
	t.Helper()
	out := map[string]svcHistory{}
	for k, v := range saved {
		out[k] = v
	}
	for _, n := range running(c) {
		out[n.Name] = historyOf(t, n)
	}
	return out
}

func checkNoDoubles(t *testing.T, hists map[string]svcHistory, killed map[string]time.Time) {
	t.Helper()
	if bad := overlaps(childSpans(hists, killed)); len(bad) > 0 {
		t.Errorf("two live copies of a child at once:\n  %s", strings.Join(bad, "\n  "))
	}
	if bad := overlaps(nameSpans(hists, killed)); len(bad) > 0 {
		t.Errorf("a name registered to two processes at once:\n  %s", strings.Join(bad, "\n  "))
	}
}

// ---- the tests ----

// kill -9 of a node that owns children and names: each of its children is
// started exactly once more, on a live node; its names are gone
// everywhere; nothing else moves.
func TestRegistryKillNodeWithChildrenAndNames(t *testing.T) {
	c := clustertest.Start(t, 4, clustertest.Options{Args: serviceArgs})
	waitAllUp(c)
	victim := c.Node(3)
	var ids []string
	for i := range 3 {
		id := fmt.Sprintf("v-%d", i)
		place(t, victim, id, "svc-"+id, "local")
		ids = append(ids, id)
	}
	for i := range 6 {
		id := fmt.Sprintf("c-%d", i)
		place(t, c.Node(0), id, "svc-"+id, "")
		ids = append(ids, id)
	}
	for i := range 3 {
		victim.MustDo("register", map[string]any{"name": fmt.Sprintf("name-v-%d", i)}, nil)
	}
	var keep string
	c.Node(1).MustDo("register", map[string]any{"name": "name-keep", "meta": map[string]string{"role": "survivor"}}, &keep)
	var before map[string]plChild
	c.Eventually(within, func() bool {
		var ok bool
		before, ok = settled(c, ids)
		if !ok {
			return false
		}
		reg, err := registryOf(c.Node(0))
		return err == nil && len(reg) == 9+4
	}, "children and names never settled before the kill")
	var lost []string
	for id, ch := range before {
		if ch.Node == victim.Name {
			lost = append(lost, id)
		}
	}
	saved := map[string]svcHistory{victim.Name: historyOf(t, victim)}
	killAt := time.Now()
	c.Kill(3)
	var after map[string]plChild
	c.Eventually(within, func() bool {
		var ok bool
		if after, ok = settled(c, ids); !ok {
			return false
		}
		for _, n := range running(c) {
			reg, err := registryOf(n)
			if err != nil || reg["name-keep"] != keep {
				return false
			}
			for name := range reg {
				if strings.HasPrefix(name, "name-v-") {
					return false
				}
			}
		}
		return true
	}, "children of the killed node not restarted once each, or its names not gone everywhere")
	hists := histories(t, c, saved)
	starts := map[string][]string{}
	var failover []time.Duration
	for node, h := range hists {
		for _, e := range h.Placement {
			if e.Type == "started" && e.Time.After(killAt) {
				starts[e.ID] = append(starts[e.ID], node)
				failover = append(failover, e.Time.Sub(killAt))
			}
		}
	}
	slices.Sort(failover)
	for _, id := range ids {
		want := 0
		if slices.Contains(lost, id) {
			want = 1
		}
		if len(starts[id]) != want {
			t.Errorf("after the kill %s was started %d times (%v), want %d", id, len(starts[id]), starts[id], want)
		}
		if want == 0 && after[id] != before[id] {
			t.Errorf("%s moved though its node lived: %+v → %+v", id, before[id], after[id])
		}
	}
	checkNoDoubles(t, hists, map[string]time.Time{victim.Name: killAt})
	t.Logf("killed %s with %d children (%v); each restarted once on a survivor, %v after the kill (detection + stable-after 1s + margin 3s)",
		victim.Name, len(lost), lost, failover)
}

// A 3|2 partition under keep-majority: the minority stops its children and
// refuses new ones, the majority restarts them; no child and no name is
// ever held twice at once; after the heal every node agrees on one owner
// per child and per name.
func TestRegistryPartitionKeepMajority(t *testing.T) {
	c := clustertest.Start(t, 5, clustertest.Options{Args: serviceArgs})
	waitAllUp(c)
	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("p-%d", i)
		place(t, c.Node(i%5), id, "svc-"+id, "")
		ids = append(ids, id)
	}
	c.Eventually(within, func() bool { _, ok := settled(c, ids); return ok }, "children never settled")
	c.Partition([]int{0, 1, 2}, []int{3, 4})
	minority := map[string]bool{c.Node(3).Name: true, c.Node(4).Name: true}
	c.Eventually(within, func() bool {
		for _, i := range []int{3, 4} {
			s, err := placementOf(c.Node(i))
			if err != nil || s.Status.Up || len(s.Local) != 0 {
				return false
			}
		}
		s, err := placementOf(c.Node(0))
		if err != nil || len(s.Children) != len(ids) {
			return false
		}
		for _, ch := range s.Children {
			if ch.Status != "running" || minority[ch.Node] {
				return false
			}
		}
		return true
	}, "the minority did not stop its children, or the majority did not restart them")
	err := c.Node(4).Do("place", map[string]any{"id": "refused", "strategy": "local"}, nil)
	if err == nil || !strings.Contains(err.Error(), "split-brain") {
		t.Fatalf("a start on the minority side: %v", err)
	}
	// Through the operations API: 503 for a start, and the side is down.
	if st, _ := opsCall(t, c, c.Node(4), "POST", "/api/v1/cluster/placement/children", map[string]any{"id": "refused", "kind": "echo", "strategy": "local"}); st != http.StatusServiceUnavailable {
		t.Fatalf("POST placement on the minority: %d, want 503", st)
	}
	if st, data := opsCall(t, c, c.Node(4), "GET", "/api/v1/cluster/placement", nil); st != 200 || data["side"] != "down" {
		t.Fatalf("GET placement on the minority: %d %v", st, data["side"])
	}
	c.Heal()
	c.WaitConverged(within)
	waitAllUp(c)
	c.Eventually(within, func() bool { _, ok := settled(c, ids); return ok }, "no single owner per child and per name after the heal")
	checkNoDoubles(t, histories(t, c, nil), nil)
	st, data := opsCall(t, c, c.Node(3), "GET", "/api/v1/cluster/registry?name=%5Esvc-&meta=placement_id", nil)
	if st != 200 || data["total"] != float64(len(ids)) {
		t.Fatalf("GET registry: %d total=%v", st, data["total"])
	}
	if st, data := opsCall(t, c, c.Node(3), "GET", "/api/v1/cluster/placement?include_nodes=true", nil); st != 200 || data["side"] != "up" || len(data["nodes"].(map[string]any)) != 5 {
		t.Fatalf("GET placement after the heal: %d %v", st, data)
	}
}

// The same names registered on both sides of a partition, then healed:
// one winner (the earliest registration), the loser told name_conflict,
// and the same registry on every node.
func TestRegistryConflictAfterHeal(t *testing.T) {
	c := clustertest.Start(t, 4, clustertest.Options{Args: serviceArgs})
	a, b := c.Node(0), c.Node(3)
	c.Partition([]int{0, 1}, []int{2, 3})
	for _, obs := range []int{0, 1} {
		for _, tgt := range []int{2, 3} {
			c.WaitStatus(c.Node(obs), c.Node(tgt), "dead", within)
			c.WaitStatus(c.Node(tgt), c.Node(obs), "dead", within)
		}
	}
	winners, losers := map[string]string{}, map[string]string{}
	for i := range 5 {
		name := fmt.Sprintf("dup-%d", i)
		var pa, pb string
		a.MustDo("register", map[string]any{"name": name}, &pa)
		b.MustDo("register", map[string]any{"name": name}, &pb)
		winners[name], losers[name] = pa, pb
		var w string
		b.MustDo("monitor", map[string]any{"pid": pb}, &w)
	}
	var onlyA, onlyB string
	a.MustDo("register", map[string]any{"name": "only-a"}, &onlyA)
	b.MustDo("register", map[string]any{"name": "only-b"}, &onlyB)
	// Each side resolves its own registration meanwhile.
	c.Eventually(within, func() bool {
		ra, errA := registryOf(c.Node(1))
		rb, errB := registryOf(c.Node(2))
		return errA == nil && errB == nil && ra["dup-0"] == winners["dup-0"] && rb["dup-0"] == losers["dup-0"]
	}, "the sides do not resolve their own registrations")
	c.Heal()
	c.WaitConverged(within)
	want := map[string]string{"only-a": onlyA, "only-b": onlyB}
	for name, pid := range winners {
		want[name] = pid
	}
	c.Eventually(within, func() bool {
		for _, n := range c.Nodes() {
			if reg, err := registryOf(n); err != nil || !mapsEqual(reg, want) {
				return false
			}
		}
		return true
	}, "the registries differ after the heal, or the earliest registration did not win")
	// Every loser got an exit with name_conflict.
	told := map[string]string{}
	deadline := time.After(testutil.Scale(within))
	for len(told) < len(losers) {
		select {
		case l := <-b.Events():
			if l.Event != "down" {
				continue
			}
			var s control.Signal
			_ = json.Unmarshal(l.Data, &s)
			told[s.PID] = s.Reason
		case <-deadline:
			t.Fatalf("exits of the losers: %v", told)
		}
	}
	for name, pid := range losers {
		if !strings.HasPrefix(told[pid], "name_conflict") {
			t.Errorf("loser of %s (%s) exited with %q, want name_conflict", name, pid, told[pid])
		}
	}
	conflicts := 0
	for _, e := range historyOf(t, b).Registry {
		if e.Type == "conflict" && losers[e.Name] == e.PID && winners[e.Name] == e.Winner {
			conflicts++
		}
	}
	if conflicts < len(losers) {
		t.Errorf("%d conflict events on the losers' node, want %d", conflicts, len(losers))
	}
}

// A 2|2 split under keep-majority: the side holding the lowest node name
// keeps the children, the other stops them. The split is drawn from a
// seed; running it again (children placed afresh the same way) gives the
// same outcome, to the node of every child.
func TestPlacementTieBreak2x2(t *testing.T) {
	const seed = 42
	c := clustertest.Start(t, 4, clustertest.Options{Args: serviceArgs})
	waitAllUp(c)
	rng := rand.New(rand.NewPCG(seed, seed))
	perm := rng.Perm(4)
	sideA, sideB := []int{perm[0], perm[1]}, []int{perm[2], perm[3]}
	lowest := clustertest.SortedNames(c.Nodes()...)[0]
	winner, loser := sideA, sideB
	if c.Node(sideB[0]).Name == lowest || c.Node(sideB[1]).Name == lowest {
		winner, loser = sideB, sideA
	}
	var ids []string
	for i := range 8 {
		ids = append(ids, fmt.Sprintf("t-%d", i))
	}
	type outcome struct {
		initial, final map[string]string // child → node
	}
	round := func() outcome {
		for _, id := range ids {
			place(t, c.Node(0), id, "svc-"+id, "")
		}
		var o outcome
		c.Eventually(within, func() bool {
			got, ok := settled(c, ids)
			if ok {
				o.initial = nodesOf(got)
			}
			return ok
		}, "children never settled")
		c.Partition(sideA, sideB)
		winners := map[string]bool{c.Node(winner[0]).Name: true, c.Node(winner[1]).Name: true}
		c.Eventually(within, func() bool {
			for _, i := range loser {
				if s, err := placementOf(c.Node(i)); err != nil || s.Status.Up || len(s.Local) != 0 {
					return false
				}
			}
			for _, i := range winner {
				s, err := placementOf(c.Node(i))
				if err != nil || !s.Status.Up || len(s.Children) != len(ids) {
					return false
				}
				for _, ch := range s.Children {
					if ch.Status != "running" || !winners[ch.Node] {
						return false
					}
				}
			}
			return true
		}, "split %v|%v: the side with %s did not keep every child", sideA, sideB, lowest)
		s, _ := placementOf(c.Node(winner[0]))
		o.final = map[string]string{}
		for _, ch := range s.Children {
			o.final[ch.ID] = ch.Node
		}
		c.Heal()
		c.WaitConverged(within)
		waitAllUp(c)
		c.Eventually(within, func() bool { _, ok := settled(c, ids); return ok }, "not settled after the heal")
		for _, id := range ids {
			c.Node(0).MustDo("unplace", map[string]any{"id": id}, nil)
		}
		c.Eventually(within, func() bool { _, ok := settled(c, nil); return ok }, "children not stopped")
		return o
	}
	first := round()
	second := round()
	if !mapsEqual(first.initial, second.initial) || !mapsEqual(first.final, second.final) {
		t.Fatalf("seed %d gave different outcomes:\n first %+v\nsecond %+v", seed, first, second)
	}
	checkNoDoubles(t, histories(t, c, nil), nil)
	t.Logf("seed %d: split %v|%v, kept by the side of %s; children ended on %v", seed, sideA, sideB, lowest, first.final)
}

func nodesOf(m map[string]plChild) map[string]string {
	out := map[string]string{}
	for id, ch := range m {
		out[id] = ch.Node
	}
	return out
}
