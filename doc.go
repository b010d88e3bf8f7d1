// Package arsenal is the composed Arsenal node: one entry point that gives
// any Go binary everything `arsenal node` has.
//
//	func main() {
//		arsenal.Main(arsenal.App{
//			Name:       "jobq",
//			Kinds:      []arsenal.Kind{{Name: "jobq.queue", New: newQueue}},
//			Messages:   []arsenal.MessageType{arsenal.Message[Job]("jobq.Job")},
//			Singletons: []placement.ChildSpec{{ID: "queue", Kind: "jobq.queue", Name: "jobq.queue"}},
//		})
//	}
//
// The binary then takes the flags, ARSENAL_* environment variables and
// JSON config file of `arsenal node` (--help lists them); it joins its
// cluster (node links and membership), runs the cluster-wide registry and
// the distributed supervisor with its split-brain policy, serves the
// operations API with tokens, /healthz, /readyz and /metrics, logs with
// slog, and speaks the control protocol (package control) when a harness
// asks for it (--control stdio, --control-socket), with the network fault
// hooks on only then. The App adds the user's behaviours (placement
// kinds, supervision trees started at boot, singletons), message types,
// settings and operations.
//
// Start is the same for a program that embeds a node; Attach composes on
// a node its caller started (the simulator). A node has one ordered
// lifecycle: Start starts the parts in order, Stop stops them in reverse
// and leaves the cluster (peers see the node "left", its names are
// removed at once, its distributed children are handed off), and Crash
// stops it as a kill would. Bad input (a kind registered twice, an
// invalid kind name, a message type clash, a setting that fails
// validation) is an error from Start that names it.
//
// docs/NODE.md is the guide; docs/TESTING.md shows how to test a service
// with package clustertest on its own binary.
package arsenal
