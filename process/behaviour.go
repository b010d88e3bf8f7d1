package process

import (
	"fmt"
	"reflect"
)

// Behaviour is a process written as callbacks, the job of OTP's gen_server.
// One goroutine at a time runs the callbacks of one process, so a behaviour
// needs no locks for its own state.
//
// A callback that returns a non-nil error stops the process with that error
// as its exit reason (return Normal to stop quietly). A panic in a callback
// stops the process with a *PanicError; the node lives on.
type Behaviour interface {
	// Init runs before the process handles any message; Spawn waits for
	// it and returns its error. Messages sent meanwhile wait in the mailbox.
	Init(p *Proc) error
	// HandleCall answers a Call. Return the reply, or NoReply and answer
	// later with p.Reply(from, value). A reply that is an error value makes
	// Call return that error without stopping the process.
	HandleCall(p *Proc, from From, request any) (reply any, err error)
	// HandleCast handles a message sent with Cast.
	HandleCast(p *Proc, msg any) error
	// HandleInfo handles every other message: Send, timers, ExitMsg when
	// trapping exits, DownMsg from monitors.
	HandleInfo(p *Proc, msg any) error
	// Terminate runs when the process stops for any reason but Kill.
	Terminate(p *Proc, reason Reason)
}

// Server gives a Behaviour default callbacks; embed it and override what
// you need. Its HandleCall answers every request with an error and keeps
// the process running.
type Server struct{}

func (Server) Init(*Proc) error { return nil }
func (Server) HandleCall(_ *Proc, _ From, req any) (any, error) {
	return fmt.Errorf("unhandled call %T", req), nil
}
func (Server) HandleCast(*Proc, any) error { return nil }
func (Server) HandleInfo(*Proc, any) error { return nil }
func (Server) Terminate(*Proc, Reason)     {}

// NoReply, returned as the reply of HandleCall, means the behaviour will
// answer later with Proc.Reply.
var NoReply = noReply{}

type noReply struct{}

// Named lets a behaviour choose the name shown by introspection; without
// it the Go type name is shown.
type Named interface{ BehaviourName() string }

func behaviourName(b any) string {
	if n, ok := b.(Named); ok {
		return n.BehaviourName()
	}
	t := reflect.TypeOf(b)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" {
		return t.String()
	}
	return t.String()
}

// Request is what a process started with SpawnFunc receives from Receive
// for a Call; answer it with Proc.Reply(req.From, value).
type Request struct {
	From From
	Body any
}
