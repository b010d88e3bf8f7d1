package launch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "node.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// An old binary (its "ready" has no protocol version), a binary of
// another version, one that never reports ready and one that exits first
// (a main that does not call arsenal.Main) each give an error that says
// so, not a hang.
func TestVersionHandshake(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"unversioned", `echo '{"event":"ready","data":{"name":"old@127.0.0.1"}}'; sleep 30`, "speaks no protocol version"},
		{"newer", `echo '{"event":"ready","data":{"name":"new@127.0.0.1","protocol":99}}'; sleep 30`, "speaks version 99, this side speaks version 1"},
		{"silent", `echo 'hello, I am not an Arsenal node'; sleep 30`, `never reported "ready" on its control channel (stdout); a binary whose main calls arsenal.Main (or 'arsenal node') does, with --control stdio; its stdout began with "hello, I am not an Arsenal node"`},
		{"exits", `echo 'hello'; exit 0`, `exited (exit status 0) before it reported "ready" on its control channel (stdout); a binary whose main calls arsenal.Main (or 'arsenal node') does, with --control stdio; its stdout began with "hello"`},
		{"fails", `exit 3`, `exited (exit status 3) before it reported "ready"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A mismatch is refused at the "ready" line; were it not, the
			// error would be the start timeout's, which names another cause.
			ch, err := Start(context.Background(), Spec{Binary: script(t, c.body), StartTimeout: 2 * time.Second})
			if err == nil {
				ch.Kill()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to say %q", err, c.want)
			}
		})
	}
}
