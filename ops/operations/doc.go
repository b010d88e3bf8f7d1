// Package operations holds Arsenal's operations, one file each. Register
// adds them all to an ops.Registry for a node; every operation works across
// the cluster through package inspect (a question about a process goes to
// its node; a cluster-wide question goes to all nodes in parallel and
// reports the nodes that did not answer).
package operations
