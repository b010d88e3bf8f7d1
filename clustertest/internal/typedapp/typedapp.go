// Package typedapp is a tiny App for clustertest's own tests of a user's
// kinds and message types (its binary is ../../testdata/typedapp).
package typedapp

import (
	"errors"
	"strconv"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/process"
)

// Kind is the counter kind; its arguments are the start value.
const Kind = "typed.counter"

// Add adds N (a call replies Total).
type Add struct{ N int }

// Get asks for the Total.
type Get struct{}

// Total is the counter's value.
type Total struct{ N int }

// Crash makes the counter exit with an error.
type Crash struct{ Why string }

type counter struct {
	process.Server
	n int
}

func (c *counter) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) {
	switch r := req.(type) {
	case Add:
		c.n += r.N
	case Get:
	default:
		return nil, errors.New("typedapp: unexpected request")
	}
	return Total{N: c.n}, nil
}

func (c *counter) HandleInfo(_ *process.Proc, msg any) error {
	switch m := msg.(type) {
	case Add:
		c.n += m.N
	case Crash:
		return errors.New("crashed: " + m.Why)
	}
	return nil
}

// App is the application.
func App() arsenal.App {
	return arsenal.App{
		Name: "typedapp",
		Kinds: []arsenal.Kind{{Name: Kind, New: func(args []byte) (process.Behaviour, error) {
			n := 0
			if len(args) > 0 {
				var err error
				if n, err = strconv.Atoi(string(args)); err != nil {
					return nil, err
				}
			}
			return &counter{n: n}, nil
		}}},
		Messages: []arsenal.MessageType{
			arsenal.Message[Add]("typed.Add"), arsenal.Message[Get]("typed.Get"),
			arsenal.Message[Total]("typed.Total"), arsenal.Message[Crash]("typed.Crash"),
		},
	}
}
