package clusterstate

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
)

// Startup is what a node reports about itself in its log as it starts:
// the addresses it actually bound (it binds port 0) and its incarnation.
type Startup struct {
	NodeAddr    string
	HTTPAddr    string
	Incarnation uint64
	// Failed is the error of a "node failed" line: the node gave up.
	Failed string
}

// Complete reports whether both addresses are known.
func (s Startup) Complete() bool { return s.NodeAddr != "" && s.HTTPAddr != "" }

// ScanStartup reads a node's log (slog text format) from offset on, and
// returns what the lines "node started", "serving HTTP" and "node
// failed" say. Lines before offset belong to earlier runs of the node.
func ScanStartup(path string, offset int64) (Startup, error) {
	var s Startup
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return s, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		kv := ParseLogLine(sc.Text())
		switch kv["msg"] {
		case "node started":
			s.NodeAddr = kv["addr"]
			if n, err := strconv.ParseUint(kv["incarnation"], 10, 64); err == nil {
				s.Incarnation = n
			}
		case "serving HTTP":
			s.HTTPAddr = kv["addr"]
		case "node failed":
			s.Failed = kv["err"]
		}
	}
	return s, sc.Err()
}

// ParseLogLine splits one slog text line (key=value pairs, values quoted
// with Go syntax when they need it) into a map. A repeated key keeps its
// first value. Anything unparsable ends the line.
func ParseLogLine(line string) map[string]string {
	kv := map[string]string{}
	for {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			return kv
		}
		key := line[:eq]
		if strings.ContainsAny(key, " \"") {
			return kv
		}
		line = line[eq+1:]
		var val string
		if strings.HasPrefix(line, `"`) {
			end := closingQuote(line)
			if end < 0 {
				return kv
			}
			v, err := strconv.Unquote(line[:end+1])
			if err != nil {
				return kv
			}
			val, line = v, line[end+1:]
		} else if sp := strings.IndexByte(line, ' '); sp >= 0 {
			val, line = line[:sp], line[sp:]
		} else {
			val, line = line, ""
		}
		if _, seen := kv[key]; !seen {
			kv[key] = val
		}
	}
}

// closingQuote returns the index of the quote that ends the Go string
// literal at the start of s, or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// LogTail returns the last n lines of a log from offset on, for error
// messages.
func LogTail(path string, offset int64, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}
