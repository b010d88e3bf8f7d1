// Package node makes a process runtime a member of a cluster.
//
// A Node binds one address for node traffic (package transport), joins
// the cluster's membership (package cluster), and routes the signals of
// its processes to other nodes over authenticated links: messages, calls
// and replies, exits, links and monitors. Between one sender and one
// receiver process, order is kept across nodes, because every frame from
// one node to another goes over that node's single outbound link.
//
// When membership declares a node dead or left, or sees it come back with
// a new incarnation, every link and monitor to a process there fires with
// NoConnection, exactly once, and calls waiting on it fail. Messages to
// PIDs of an earlier incarnation are dropped by the receiving runtime.
//
// Node requests (Request, HandleRequest) carry node-level questions, such
// as the facts a node collects about every other node on an interval, and
// the cluster-wide operations of package ops.
package node
