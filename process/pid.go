package process

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PID identifies a process anywhere in a cluster: the node it lives on, the
// incarnation of that node (new on every start of the node), and an id that
// is unique within one incarnation.
//
// Its text form is "ID.INCARNATION@NODE", for example
// "42.lx3k2f9a1@api@10.0.0.5", with the incarnation in base 36. The form
// round-trips through ParsePID and holds only characters that are legal in a
// URL path segment, so PIDs can be used in REST paths without escaping.
type PID struct {
	Node        string
	Incarnation uint64
	ID          uint64
}

// IsZero reports whether p is the zero PID, which names no process. Messages
// from code that is not a process carry the zero PID as their sender.
func (p PID) IsZero() bool { return p.ID == 0 && p.Node == "" && p.Incarnation == 0 }

// String returns the text form of p. The zero PID prints as "nopid".
func (p PID) String() string {
	if p.IsZero() {
		return "nopid"
	}
	b := make([]byte, 0, 24+len(p.Node))
	b = strconv.AppendUint(b, p.ID, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, p.Incarnation, 36)
	b = append(b, '@')
	b = append(b, p.Node...)
	return string(b)
}

// MarshalText implements encoding.TextMarshaler, so PIDs are strings in JSON.
func (p PID) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *PID) UnmarshalText(b []byte) error {
	q, err := ParsePID(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// ErrBadPID is wrapped by every error ParsePID returns.
var ErrBadPID = errors.New("malformed pid")

// ParsePID parses the text form produced by PID.String.
func ParsePID(s string) (PID, error) {
	bad := func(why string) (PID, error) {
		return PID{}, fmt.Errorf("%w %q: %s (want ID.INCARNATION@NODE, e.g. 42.lx3k2f9a1@api@127.0.0.1)", ErrBadPID, s, why)
	}
	if len(s) > 512 {
		return bad("longer than 512 bytes")
	}
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return bad("no '@' before the node name")
	}
	head, node := s[:at], s[at+1:]
	dot := strings.IndexByte(head, '.')
	if dot < 0 {
		return bad("no '.' between id and incarnation")
	}
	id, err := strconv.ParseUint(head[:dot], 10, 64)
	if err != nil || id == 0 {
		return bad("id is not a positive decimal integer")
	}
	inc, err := strconv.ParseUint(head[dot+1:], 36, 64)
	if err != nil {
		return bad("incarnation is not a base-36 integer")
	}
	if err := ValidateNodeName(node); err != nil {
		return bad(err.Error())
	}
	return PID{Node: node, Incarnation: inc, ID: id}, nil
}

// ValidateNodeName checks that a node name is non-empty, at most 255 bytes,
// and made only of letters, digits and "._-@:[]" so that PIDs stay safe in
// URL path segments and log lines.
func ValidateNodeName(n string) error {
	if n == "" {
		return errors.New("node name is empty")
	}
	if len(n) > 255 {
		return errors.New("node name is longer than 255 bytes")
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-', c == '@', c == ':', c == '[', c == ']':
		default:
			return fmt.Errorf("node name %q has the character %q; allowed are letters, digits and ._-@:[]", n, c)
		}
	}
	return nil
}

// Ref identifies one monitor. It is unique within the node that created it.
type Ref struct {
	Node string
	ID   uint64
}

func (r Ref) String() string { return "#ref." + strconv.FormatUint(r.ID, 10) + "@" + r.Node }

// IsZero reports whether r is the zero Ref.
func (r Ref) IsZero() bool { return r.ID == 0 }
