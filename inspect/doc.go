// Package inspect looks into and acts on the processes of a cluster, for
// the operations API and its CLI.
//
// Install registers node request handlers on a node; every node of a
// cluster installs them. The functions of this package then work on any
// node's processes from any node: a question about one process goes to
// that process's node over the node link; a cluster-wide question goes to
// all nodes in parallel, with a timeout each, and lists the nodes that did
// not answer instead of failing.
package inspect
