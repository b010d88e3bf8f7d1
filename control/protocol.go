// Package control is the control protocol between a test harness (or
// `arsenal dev`, or `arsenal cluster`) and the Arsenal nodes it runs: any
// binary built with arsenal.Main speaks it, `arsenal node` included. It
// runs over the child's stdin and stdout (--control stdio), or a unix
// socket (--control-socket), never over the cluster network, so a node
// whose network is cut stays controllable; on stdio a node exits when its
// stdin reaches EOF, so children never outlive their parent.
//
// Each line is one JSON object. The parent sends Commands; the node
// answers each with a Reply carrying the same ID, and sends Events on its
// own (first "ready", with its addresses and its protocol Version).
//
// The protocol is versioned: Ready.Protocol is the node's Version, and the
// "hello" command (Hello) lets a client state its own; either side refuses
// a version it does not speak with an error that names both (CheckVersion),
// rather than hang. docs/CONTROL.md lists every command.
//
// Messages of the user's own types travel in the codec encoding (package
// codec) as the Value fields, base64 in JSON: both sides must have
// registered the type (codec.Register).
package control

import (
	"encoding/json"
	"fmt"
)

// Version is the control protocol version this package speaks. It changes
// when a command or an event changes incompatibly.
const Version = 1

// CheckVersion returns an error unless v is Version; who names the other
// side in the message ("node n1@127.0.0.1", "harness").
func CheckVersion(who string, v int) error {
	switch {
	case v == Version:
		return nil
	case v == 0:
		return fmt.Errorf("control protocol: %s speaks no protocol version (a binary from before versioning, or not an Arsenal node); this side speaks version %d: rebuild it against this Arsenal", who, Version)
	default:
		return fmt.Errorf("control protocol: %s speaks version %d, this side speaks version %d: build both against the same Arsenal", who, v, Version)
	}
}

// Hello is the argument and the result of the "hello" command: the
// client's protocol version in, the node's out.
type Hello struct {
	Protocol int    `json:"protocol"`
	App      string `json:"app,omitempty"`
}

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
	// Protocol is the node's control protocol Version (0 before
	// versioning).
	Protocol int `json:"protocol"`
	// App is the application's name (arsenal.App.Name); Kinds are the
	// kinds of processes it can spawn and place.
	App   string   `json:"app,omitempty"`
	Kinds []string `json:"kinds,omitempty"`
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
	Type        string `json:"type"` // node_up, node_suspect, node_down, node_left, node_updated, node_removed, node_admitted, partition_changed, mode_changed
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

// Spawn is the argument of the "spawn" command: a process of Kind (one of
// the built-in helpers echo, sink and supervisor, or a kind the
// application registered, made from KindArgs), optionally with a local
// Name; Count > 1 spawns that many idle echo servers and returns the count.
type Spawn struct {
	Kind     string `json:"kind,omitempty"`
	KindArgs []byte `json:"kind_args,omitempty"`
	Name     string `json:"name,omitempty"`
	Count    int    `json:"count,omitempty"`
}

// Message is the argument of "send" and "call" (To a PID) and of
// "registry_send" and "registry_call" (Name, a cluster-wide name). The
// message is Value, codec-encoded, else the string Msg. Count > 1 sends
// Msg+":"+i for i in 0..Count-1 (send only).
type Message struct {
	To      string `json:"to,omitempty"`
	Name    string `json:"name,omitempty"`
	Msg     string `json:"msg,omitempty"`
	Value   []byte `json:"value,omitempty"`
	Count   int    `json:"count,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

// Value is the result of a call made with a Value: the reply, codec-encoded.
type Value struct {
	Value []byte `json:"value"`
}

// Place is the argument of the "place" command: a child of the distributed
// supervisor (placement.ChildSpec), with its arguments as bytes (KindArgs)
// or a string (Args).
type Place struct {
	ID       string `json:"id"`
	Kind     string `json:"kind,omitempty"`
	Args     string `json:"args,omitempty"`
	KindArgs []byte `json:"kind_args,omitempty"`
	Name     string `json:"name,omitempty"`
	Restart  string `json:"restart,omitempty"`
	Strategy string `json:"strategy,omitempty"`
}
