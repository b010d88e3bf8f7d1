// Package control is the old import path of the control protocol, now
// the public package github.com/arsenal-go/arsenal/control (versioned,
// docs/CONTROL.md). These aliases keep code written against the old path
// compiling; import the public package in new code.
package control

import "github.com/arsenal-go/arsenal/control"

type (
	Command     = control.Command
	Reply       = control.Reply
	Event       = control.Event
	Line        = control.Line
	Ready       = control.Ready
	Member      = control.Member
	Signal      = control.Signal
	Fault       = control.Fault
	MemberEvent = control.MemberEvent
	SendSeq     = control.SendSeq
)
