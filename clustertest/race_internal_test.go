package clustertest

import (
	"strings"
	"testing"
)

func TestRaceReportsAndKnownRaces(t *testing.T) {
	saved := knownRaces
	knownRaces = []string{"node.(*checkedProvider).Discover"} // an example entry
	defer func() { knownRaces = saved }()
	logs := "time=… level=INFO msg=x\n" +
		"==================\nWARNING: DATA RACE\nRead at 0x1 by goroutine 8:\n  github.com/arsenal-go/arsenal/node.(*checkedProvider).Discover.func1()\n==================\n" +
		"time=… level=INFO msg=y\n" +
		"==================\nWARNING: DATA RACE\nWrite at 0x2 by goroutine 9:\n  github.com/arsenal-go/arsenal/process.(*Runtime).send()\n==================\n"
	rs := raceReports(logs)
	if len(rs) != 2 {
		t.Fatalf("%d reports: %q", len(rs), rs)
	}
	if !strings.HasPrefix(rs[0], "WARNING: DATA RACE") || strings.Contains(rs[0], "msg=y") {
		t.Errorf("first report cut wrong: %q", rs[0])
	}
	if knownRace(rs[0]) == "" || knownRace(rs[1]) != "" {
		t.Errorf("known: %q, %q", knownRace(rs[0]), knownRace(rs[1]))
	}
	if raceReports("no race here") != nil {
		t.Error("a report without a race")
	}
}
