package cluster

import (
	"bytes"
	"log"
	"log/slog"
	"strings"
)

// mlLogWriter turns memberlist's log.Logger lines ("[LEVEL] memberlist: …")
// into slog records at debug level. memberlist logs routine trouble (failed
// probes, refused pushes) as [ERR]/[WARN] during every partition, so it is
// debug material for us; what matters is reported by this package itself.
// Its [DEBUG] lines are dropped: they are per-packet noise.
//
// The writer also watches for the one line that reveals a suspicion, since
// memberlist has no callback for it (see doc.go, "Suspect").
type mlLogWriter struct {
	log       *slog.Logger
	onSuspect func(name string)
}

const (
	suspectPrefix = "memberlist: Suspect "
	suspectSuffix = " has failed, no acks received"
)

func newMemberlistLogger(l *slog.Logger, onSuspect func(string)) *log.Logger {
	return log.New(&mlLogWriter{log: l, onSuspect: onSuspect}, "", 0)
}

func (w *mlLogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\r\n"))
	level, msg := "", line
	if strings.HasPrefix(line, "[") {
		if i := strings.Index(line, "] "); i > 0 {
			level, msg = line[1:i], line[i+2:]
		}
	}
	if level == "DEBUG" {
		return len(p), nil
	}
	if w.onSuspect != nil && strings.HasPrefix(msg, suspectPrefix) && strings.HasSuffix(msg, suspectSuffix) {
		w.onSuspect(strings.TrimSuffix(strings.TrimPrefix(msg, suspectPrefix), suspectSuffix))
	}
	w.log.Debug(msg, "memberlist_level", level)
	return len(p), nil
}
