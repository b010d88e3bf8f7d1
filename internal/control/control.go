// Package control is the line protocol between a test harness (or
// `arsenal dev`) and the `arsenal node` processes it starts. It runs over
// the child's stdin and stdout, never over the cluster network, so a node
// whose network is cut stays controllable; and a node exits when its
// stdin reaches EOF, so children never outlive their parent.
//
// Each line is one JSON object. The parent sends Commands; the node
// answers each with a Reply carrying the same ID, and sends Events on its
// own (first "ready", with its addresses).
package control

import "encoding/json"

// Command is one request from the parent.
type Command struct {
	ID   uint64          `json:"id"`
	Cmd  string          `json:"cmd"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Reply answers a Command.
type Reply struct {
	ID     uint64          `json:"id"`
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Event is something the node reports on its own.
type Event struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Line is what the parent reads: a Reply (ID > 0) or an Event.
type Line struct {
	ID     uint64          `json:"id,omitempty"`
	OK     bool            `json:"ok,omitempty"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Event  string          `json:"event,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// Ready is the data of the "ready" event.
type Ready struct {
	Name        string `json:"name"`
	Cluster     string `json:"cluster"`
	NodeAddr    string `json:"node_addr"`
	HTTPAddr    string `json:"http_addr"`
	Incarnation uint64 `json:"incarnation"`
	OSPID       int    `json:"os_pid"`
}

// Member is one row of the "members" command's result.
type Member struct {
	Name        string `json:"name"`
	Status      string `json:"status"`
	Incarnation uint64 `json:"incarnation"`
}

// Signal is the data of "down", "exit" and "message" events: what a
// watcher process spawned with "monitor", "link" or "sink" received.
type Signal struct {
	Watcher string `json:"watcher"`
	PID     string `json:"pid,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message any    `json:"message,omitempty"`
}

// Fault is the argument of the "fault" command.
type Fault struct {
	Action string `json:"action"` // block, block_links (node links only), delay, refuse, clear, clear_all
	Peer   string `json:"peer,omitempty"`
	Dir    string `json:"dir,omitempty"` // out, in, both
	Delay  string `json:"delay,omitempty"`
	Jitter string `json:"jitter,omitempty"`
}

// MemberEvent is the data of a "member" event: one change of the node's
// membership view (package cluster's Event), streamed after the
// "watch_members" command. Harnesses count status changes with it (a
// flapping member shows as repeated node_down / node_up).
type MemberEvent struct {
	Seq         uint64 `json:"seq"`
	Type        string `json:"type"` // node_up, node_suspect, node_down, node_left, node_updated, partition_changed, mode_changed
	Node        string `json:"node,omitempty"`
	OldStatus   string `json:"old_status,omitempty"`
	NewStatus   string `json:"new_status,omitempty"`
	Incarnation uint64 `json:"incarnation,omitempty"`
	Restarted   bool   `json:"restarted,omitempty"`
	Partition   string `json:"partition,omitempty"` // the state after a partition_changed
	Mode        string `json:"mode,omitempty"`      // the mode after a mode_changed
}

// SendSeq is the argument of the "send_seq" command: the sender process
// (from the "sender" command) sends Msg+":"+n to To for the next Count
// numbers n of its own sequence, which starts at 0 and never repeats. One
// long-lived sender per pair is what per-pair FIFO is about.
type SendSeq struct {
	Sender string `json:"sender"`
	To     string `json:"to"`
	Msg    string `json:"msg"`
	Count  int    `json:"count"`
}
