package main

// The rebalance verb: one operation, placement.rebalance.
func init() {
	v := clientVerb{name: "rebalance", op: "placement.rebalance", summary: "move distributed children back to their placement (client)",
		usage:       "arsenal rebalance [flags]",
		description: "Move every child of the distributed supervisor to where rendezvous places it among the live nodes, each stopped before it starts elsewhere (no child runs twice). Prints the children moved per node."}
	register(command{name: v.name, summary: v.summary, run: v.run})
}
