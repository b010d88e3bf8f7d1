package main

// arsenal rebalance: placement.rebalance.

func init() {
	addVerb(clientVerb{name: "rebalance", op: "placement.rebalance", summary: "move distributed children back to their placement (client)",
		description: "Move every child of the distributed supervisor to where rendezvous places it among the live nodes, " +
			"each stopped before it starts elsewhere (no child runs twice). Prints the children moved per node."})
}
