package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/arsenal-go/arsenal/internal/clusterstate"
)

const clusterLogsDescription = `
Print a node's log, or with no NODE the logs of all nodes merged in time
order, each line prefixed with its node. --follow keeps printing new lines
until Ctrl-C (it also picks up a restarted node's lines).

NODE is a node's name (node2 or node2@127.0.0.1) or its number (2).

Examples:
  arsenal cluster logs
  arsenal cluster logs node2 --tail 50
  arsenal cluster logs --follow | grep -i error
`

// clusterLogFile is one node's log being read.
type clusterLogFile struct {
	prefix string
	path   string
	offset int64
	rest   []byte // a partial last line, until its newline arrives
}

// clusterLogLine is one line with the time it was logged, for merging.
type clusterLogLine struct {
	at   time.Time
	file int
	text string
}

func runClusterLogs(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster logs", "arsenal cluster logs [NODE] [flags]", clusterLogsDescription, stderr)
	ref := addClusterFlags(fs)
	follow := fs.Bool("follow", false, "keep printing new lines until Ctrl-C")
	fs.BoolVar(follow, "f", false, "short for --follow")
	tailN := fs.Int("tail", 0, "print only the last N lines first (0: all)")
	pos, code, done := parseInterleaved(fs, args, stdout)
	if done {
		return code
	}
	const cmd = "logs"
	if len(pos) > 1 {
		return clusterUsageErr(stderr, cmd, "want at most one NODE, got %q", pos)
	}
	if *tailN < 0 {
		return clusterUsageErr(stderr, cmd, "--tail %d: want 0 or more", *tailN)
	}
	_, st, err := ref.load()
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	idx, err := clusterSelectNodes(st, pos)
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	var files []*clusterLogFile
	for _, i := range idx {
		f := &clusterLogFile{path: st.Nodes[i].Log}
		if len(idx) > 1 {
			f.prefix = "[" + clusterstate.ShortName(st.Nodes[i].Name) + "] "
		}
		files = append(files, f)
	}
	var lines []clusterLogLine
	for fi, f := range files {
		got, err := f.read()
		if err != nil && !os.IsNotExist(err) {
			return clusterFail(stderr, cmd, "%v", err)
		}
		var last time.Time
		for _, l := range got {
			// A line without a time (a panic's stack) keeps its place
			// after the line before it.
			if t, ok := logLineTime(l); ok {
				last = t
			}
			lines = append(lines, clusterLogLine{at: last, file: fi, text: l})
		}
	}
	if len(files) > 1 {
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	}
	if *tailN > 0 && len(lines) > *tailN {
		lines = lines[len(lines)-*tailN:]
	}
	for _, l := range lines {
		fmt.Fprintf(stdout, "%s%s\n", files[l.file].prefix, l.text)
	}
	if !*follow {
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
		for _, f := range files {
			got, _ := f.read()
			for _, l := range got {
				fmt.Fprintf(stdout, "%s%s\n", f.prefix, l)
			}
		}
	}
}

// read returns the complete lines added since the last read. A file that
// shrank (a new cluster started over it) is read again from its start.
func (f *clusterLogFile) read() ([]string, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err == nil && fi.Size() < f.offset {
		f.offset, f.rest = 0, nil
	}
	if _, err := fh.Seek(f.offset, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(fh)
	if err != nil {
		return nil, err
	}
	f.offset += int64(len(b))
	b = append(f.rest, b...)
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		f.rest = b
		return nil, nil
	}
	f.rest = append([]byte(nil), b[end+1:]...)
	return strings.Split(string(b[:end]), "\n"), nil
}

// lineTime reads the time= field that starts a slog text line.
func logLineTime(line string) (time.Time, bool) {
	v, ok := strings.CutPrefix(line, "time=")
	if !ok {
		return time.Time{}, false
	}
	if sp := strings.IndexByte(v, ' '); sp >= 0 {
		v = v[:sp]
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}
