package ops

import (
	"fmt"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// Params holds the validated parameters of a call, by name, with the Go
// type of each parameter's Type. Absent optional parameters without a
// default are not in the map.
//
// The getters return the zero value for an absent parameter. They panic
// when the parameter holds another type: that is a bug in the operation
// (asking Int of a string parameter), and the server turns it into a 500.
type Params map[string]any

// Has reports whether the parameter was given or has a default.
func (p Params) Has(name string) bool {
	_, ok := p[name]
	return ok
}

func get[T any](p Params, name string) T {
	var zero T
	v, ok := p[name]
	if !ok {
		return zero
	}
	t, ok := v.(T)
	if !ok {
		panic(fmt.Sprintf("ops: parameter %q holds %T, not %T", name, v, zero))
	}
	return t
}

// String returns a string, node or enum parameter.
func (p Params) String(name string) string { return get[string](p, name) }

// Int returns an int parameter.
func (p Params) Int(name string) int { return get[int](p, name) }

// Float returns a float parameter.
func (p Params) Float(name string) float64 { return get[float64](p, name) }

// Bool returns a bool parameter.
func (p Params) Bool(name string) bool { return get[bool](p, name) }

// Duration returns a duration parameter.
func (p Params) Duration(name string) time.Duration { return get[time.Duration](p, name) }

// PID returns a pid parameter.
func (p Params) PID(name string) process.PID { return get[process.PID](p, name) }

// Strings returns a list of strings, nodes or enum values.
func (p Params) Strings(name string) []string { return get[[]string](p, name) }

// Ints returns a list of ints.
func (p Params) Ints(name string) []int { return get[[]int](p, name) }

// PIDs returns a list of pids.
func (p Params) PIDs(name string) []process.PID { return get[[]process.PID](p, name) }

// Object returns an object parameter. JSON numbers in it are int64 when
// they are integers that fit, float64 otherwise.
func (p Params) Object(name string) map[string]any { return get[map[string]any](p, name) }
