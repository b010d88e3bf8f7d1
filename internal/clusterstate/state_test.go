package clusterstate

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseLogLine(t *testing.T) {
	line := `time=2026-11-21T22:08:31.339Z level=INFO msg="node started" node=a@127.0.0.1 node=b cluster=x addr=127.0.0.1:33219 incarnation=117656709453494047 note="a \"quoted\" = value"`
	kv := ParseLogLine(line)
	want := map[string]string{
		"time": "2026-11-21T22:08:31.339Z", "level": "INFO", "msg": "node started", "node": "a@127.0.0.1",
		"cluster": "x", "addr": "127.0.0.1:33219", "incarnation": "117656709453494047", "note": `a "quoted" = value`,
	}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
	if len(ParseLogLine("panic: something broke")) != 0 {
		t.Error("a line that is not key=value gave pairs")
	}
}

func TestScanStartupReadsFromOffset(t *testing.T) {
	p := filepath.Join(t.TempDir(), "n.log")
	old := "time=x level=INFO msg=\"node started\" addr=127.0.0.1:1 incarnation=1\n"
	cur := "time=y level=INFO msg=\"node started\" addr=127.0.0.1:2 incarnation=2\n" +
		"time=y level=INFO msg=\"serving HTTP\" addr=127.0.0.1:3\n"
	if err := os.WriteFile(p, []byte(old+cur), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ScanStartup(p, int64(len(old)))
	if err != nil {
		t.Fatal(err)
	}
	if s.NodeAddr != "127.0.0.1:2" || s.HTTPAddr != "127.0.0.1:3" || s.Incarnation != 2 || !s.Complete() {
		t.Fatalf("got %+v", s)
	}
}

func TestSaveLoadListFind(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "c1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("Load of an empty directory succeeded")
	}
	st := &State{Name: "c1", CreatedAt: time.Now(), Nodes: []Node{{Name: "node1@127.0.0.1"}, {Name: "node2@127.0.0.1"}}}
	if err := Save(dir, st); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil || got.Name != "c1" || len(got.Nodes) != 2 {
		t.Fatalf("Load: %+v, %v", got, err)
	}
	names, err := List(root)
	if err != nil || !slices.Equal(names, []string{"c1"}) {
		t.Fatalf("List: %v, %v", names, err)
	}
	for _, q := range []string{"node2", "node2@127.0.0.1", "2"} {
		if i, ok := got.Find(q); !ok || i != 1 {
			t.Errorf("Find(%q) = %d, %v", q, i, ok)
		}
	}
	for _, q := range []string{"node3", "0", "3", "02"} {
		if _, ok := got.Find(q); ok {
			t.Errorf("Find(%q) found a node", q)
		}
	}
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"local", "c-1", "a.b_c"} {
		if err := ValidName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", "../x", "a/b", ".hidden", "-x", "a b"} {
		if ValidName(n) == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestAliveChecksTheCommandLine(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	cmd := exec.Command(sleep, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	// Right after exec the kernel may not have set up the new command
	// line yet; wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for !Alive(pid, []string{sleep, "30"}) {
		if time.Now().After(deadline) {
			t.Fatal("a running process with the recorded command line is not alive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if Alive(pid, []string{sleep, "31"}) {
		t.Fatal("a process with another command line counts as alive (pid reuse)")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if Alive(pid, []string{sleep, "30"}) {
		t.Fatal("a dead process counts as alive")
	}
}
