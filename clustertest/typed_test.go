package clustertest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/clustertest/internal/typedapp"
	"github.com/arsenal-go/arsenal/placement"
)

// A user's own kind and message types, on a user's binary
// (testdata/typedapp) and on the simulator: spawn, call, send, monitor,
// link, place and reach by name, with typed values and process.PIDs.
func TestUserKindsAndTypedMessages(t *testing.T) {
	for _, backend := range []string{clustertest.BackendReal, clustertest.BackendSim} {
		t.Run(backend, func(t *testing.T) {
			app := typedapp.App()
			h := clustertest.New(t, 3, clustertest.Options{Backend: backend, Build: "./testdata/typedapp", App: &app,
				Args: []string{"--stable-after", "1s"}})
			h.WaitServicesReady(30 * time.Second)

			pid := h.SpawnKind(1, typedapp.Kind, []byte("10"))
			if pid.Node != h.NodeName(1) {
				t.Fatalf("spawned on %s, want %s", pid.Node, h.NodeName(1))
			}
			if v, err := h.CallTo(0, pid, typedapp.Add{N: 5}); err != nil || v != (typedapp.Total{N: 15}) {
				t.Fatalf("call: %#v, %v", v, err)
			}
			h.SendTo(2, pid, typedapp.Add{N: 1})
			h.Eventually(10*time.Second, func() bool {
				v, err := h.CallTo(0, pid, typedapp.Get{})
				return err == nil && v == (typedapp.Total{N: 16})
			}, "the typed send arrived")

			mark := h.History().Len()
			mon := h.MonitorPID(0, pid)
			lnk := h.LinkPID(2, pid)
			// The monitor and link frames travel on the n1→n2 and n3→n2
			// connections, the crash on n1→n2: without a round trip from n3
			// the crash can reach pid before n3's link does, and the link
			// then (rightly) reports noproc. A call from each watcher's node
			// comes after its frame on the same connection, so its answer
			// proves the monitor and the link are in place.
			for _, i := range []int{0, 2} {
				if _, err := h.CallTo(i, pid, typedapp.Get{}); err != nil {
					t.Fatalf("call from node %d: %v", i, err)
				}
			}
			h.SendTo(0, pid, typedapp.Crash{Why: "on purpose"})
			h.Eventually(10*time.Second, func() bool {
				downs := h.History().Signals(mark, clustertest.KindDown, h.NodeName(0))
				exits := h.History().Signals(mark, clustertest.KindExit, h.NodeName(2))
				return len(downs) == 1 && len(exits) == 1 && downs[0].Watcher == mon.String() && exits[0].Watcher == lnk.String() &&
					strings.Contains(downs[0].Reason, "on purpose") && strings.Contains(exits[0].Reason, "on purpose")
			}, "one DOWN on n1 and one EXIT on n3, with the crash's reason")

			if _, err := h.Place(0, placement.ChildSpec{ID: "c1", Kind: typedapp.Kind, Args: []byte("100"), Name: "typed.c1"}); err != nil {
				t.Fatalf("place: %v", err)
			}
			h.WaitServicesReady(30 * time.Second)
			if v, err := h.CallName(2, "typed.c1", typedapp.Add{N: 1}); err != nil || v != (typedapp.Total{N: 101}) {
				t.Fatalf("call by name: %#v, %v", v, err)
			}
			if err := h.SendName(1, "typed.c1", typedapp.Add{N: 1}); err != nil {
				t.Fatal(err)
			}
			h.Eventually(10*time.Second, func() bool {
				v, err := h.CallName(0, "typed.c1", typedapp.Get{})
				return err == nil && v == (typedapp.Total{N: 102})
			}, "the send by name arrived")
			p0, ok0 := h.Lookup(0, "typed.c1")
			p2, ok2 := h.Lookup(2, "typed.c1")
			if !ok0 || !ok2 || p0 != p2 {
				t.Fatalf("lookups disagree: %v %v / %v %v", p0, ok0, p2, ok2)
			}
		})
	}
}
