package arsenal_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/placement"
)

// Every setting, Arsenal's and the App's own, comes from its flag, else
// its ARSENAL_* environment variable, else the JSON config file (keys are
// the flag names), else its default; a bad setting or an unknown key is an
// error that names it.
func TestParseConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := write("secret", "0123456789abcdef0123456789abcdef\n")
	conf := write("node.json", `{"name": "file@127.0.0.1", "profile": "wan", "split-brain": "keep-oldest",
		"stable-after": "4s", "jobs": "7", "color": "red"}`)
	var jobs, color, shade *string
	app := arsenal.App{Name: "svc", Flags: func(f *arsenal.Flags) {
		jobs = f.String("jobs", "ARSENAL_SVC_JOBS", "1", "jobs")
		color = f.String("color", "ARSENAL_SVC_COLOR", "blue", "color")
		shade = f.String("shade", "ARSENAL_SVC_SHADE", "dark", "shade")
	}}
	for _, k := range []string{"ARSENAL_NAME", "ARSENAL_PROFILE", "ARSENAL_SPLIT_BRAIN", "ARSENAL_STABLE_AFTER", "ARSENAL_CLUSTER", "ARSENAL_SECRET", "ARSENAL_CONFIG"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("ARSENAL_PROFILE", "fast")    // beats the file
	t.Setenv("ARSENAL_SVC_COLOR", "green") // beats the file
	cfg, err := arsenal.ParseConfig(app, []string{"--config", conf, "--secret-file", secret,
		"--name", "flag@127.0.0.1", "--jobs", "9", "--http-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, got, want string }{
		{"name (flag over file)", cfg.Node.Name, "flag@127.0.0.1"},
		{"profile (env over file)", string(cfg.Node.Profile), string(cluster.ProfileFast)},
		{"split-brain (file)", string(cfg.Placement.SplitBrain), string(placement.KeepOldest)},
		{"stable-after (file)", cfg.Placement.StableAfter.String(), (4 * time.Second).String()},
		{"cluster (default: the App's name)", cfg.Node.Cluster, "svc"},
		{"secret (file, trimmed)", string(cfg.Node.Secret), "0123456789abcdef0123456789abcdef"},
		{"App --jobs (flag over file)", *jobs, "9"},
		{"App --color (env over file)", *color, "green"},
		{"App --shade (default)", *shade, "dark"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.what, c.got, c.want)
		}
	}

	for _, c := range []struct {
		what string
		args []string
		want []string
	}{
		{"unknown key", []string{"--config", write("bad.json", `{"split-brian": "keep-oldest"}`)}, []string{"unknown keys split-brian"}},
		{"bad values", []string{"--split-brain", "coin-toss", "--log-level", "loud", "--profile", "moon"},
			[]string{`"coin-toss"`, `--log-level "loud"`, "moon"}},
		{"no secret", []string{"--name", "x@127.0.0.1"}, []string{"no cluster secret"}},
	} {
		_, err := arsenal.ParseConfig(app, append(c.args, "--http-addr", "127.0.0.1:0"), io.Discard, io.Discard)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v does not name %q", c.what, err, w)
			}
		}
	}
}

// Run's exit codes: 0 for --help (the usage lists the App's own settings),
// 2 for bad settings or a bad App (named on stderr), 1 for a node that
// fails to start (its cause named).
func TestRunExitCodes(t *testing.T) {
	t.Setenv("ARSENAL_SECRET", "0123456789abcdef0123456789abcdef")
	app := arsenal.App{Name: "svc", Flags: func(f *arsenal.Flags) { f.String("jobs", "ARSENAL_SVC_JOBS", "1", "how many jobs") }}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	twice := arsenal.App{Name: "svc", Kinds: []arsenal.Kind{{Name: "t.k", New: newEcho}, {Name: "t.k", New: newEcho}}}
	for _, c := range []struct {
		what string
		app  arsenal.App
		args []string
		code int
		want string // on stdout for 0, on stderr otherwise
	}{
		{"help", app, []string{"--help"}, 0, "how many jobs"},
		{"bad setting", app, []string{"--split-brain", "coin-toss"}, 2, `"coin-toss"`},
		{"kind twice", twice, nil, 2, `kind "t.k" registered twice`},
		{"address taken", app, []string{"--node-addr", "127.0.0.1:0", "--http-addr", taken.Addr().String()}, 1, "HTTP address " + taken.Addr().String()},
	} {
		var out, errb syncBuf
		code := arsenal.Run(c.app, c.args, &out, &errb)
		text := errb.b.String()
		if c.code == 0 {
			text = out.b.String()
		}
		if code != c.code || !strings.Contains(text, c.want) {
			t.Errorf("%s: exit %d, want %d; output %q does not have %q", c.what, code, c.code, text, c.want)
		}
	}
}

// The network fault hooks are off unless a harness asks: --faults auto
// (the default) installs them only with a control channel.
func TestFaultHooksOffUnlessAsked(t *testing.T) {
	t.Setenv("ARSENAL_SECRET", "0123456789abcdef0123456789abcdef")
	t.Setenv("ARSENAL_FAULTS", "")
	os.Unsetenv("ARSENAL_FAULTS")
	sock := filepath.Join(t.TempDir(), "c.sock")
	for _, c := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--control", "stdio"}, true},
		{[]string{"--control-socket", sock}, true},
		{[]string{"--faults", "true"}, true},
		{[]string{"--control", "stdio", "--faults", "false"}, false},
	} {
		cfg, err := arsenal.ParseConfig(arsenal.App{Name: "svc"}, c.args, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Faults != c.want {
			t.Errorf("%q: fault hooks %v, want %v", c.args, cfg.Faults, c.want)
		}
	}
	for _, on := range []bool{false, true} {
		cfg := config(fmt.Sprintf("faults-%v@127.0.0.1", on), "faults", arsenal.App{})
		cfg.Faults = on
		n, err := arsenal.Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if (n.Faults() != nil) != on {
			t.Errorf("Config.Faults %v: the node's fault hooks %v", on, n.Faults())
		}
		if err := n.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
