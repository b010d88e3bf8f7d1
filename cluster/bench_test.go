package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkJoinConvergence5 measures the time from the first of five nodes
// starting until every node sees all five alive (Fast profile, loopback;
// each node is given every earlier node as a seed).
func BenchmarkJoinConvergence5(b *testing.B) {
	const n = 5
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bench%d", i)
		var nodes []*Cluster
		var seeds []string
		start := time.Now()
		for j := range n {
			c, err := Start(context.Background(), testConfig(name, nodeName(j), seeds...))
			if err != nil {
				b.Fatal(err)
			}
			nodes = append(nodes, c)
			seeds = append(seeds, c.GossipAddr())
		}
		eventually(b, wait, func() string { return allSee(nodes, StatusAlive, names(nodes)...) })
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms-to-converge")
		b.StopTimer()
		for _, c := range nodes {
			_ = c.Shutdown()
		}
		b.StartTimer()
	}
}

// TestProfileTable prints the numbers doc.go's table is made of
// (go test -run ProfileTable -v).
func TestProfileTable(t *testing.T) {
	for _, p := range Profiles() {
		s := p.Settings()
		for _, n := range []int{3, 5, 10} {
			mn, mx := s.SuspicionTimeout(n)
			typ, up := s.CrashDetection(n)
			t.Logf("%-5s N=%-2d probe %v/%v suspicion %v–%v detect ~%v (≤%v) rejoin %v heal ≤%v pushpull %v reclaim %v",
				p, n, s.ProbeInterval, s.ProbeTimeout, mn, mx, typ, up, s.RejoinInterval, s.HealBound(), s.PushPullInterval, s.DeadNodeReclaimTime)
		}
	}
}
