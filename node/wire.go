package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/process"
)

// Frame kinds of the node-to-node protocol. A frame is one kind byte and
// fields in a fixed order: PIDs as (node, incarnation, id), numbers as
// uvarints, strings length-prefixed, payloads in the codec's encoding.
const (
	frameSend byte = iota + 1
	frameCall
	frameReply
	frameExit
	frameLink
	frameUnlink
	frameMonitor
	frameDemonitor
	frameDown
	frameRequest
	frameResponse
	// frameHello is the first frame on a link its dialler opens for a
	// connection: the dialler's epoch for it (a uvarint). A link that
	// never carries a frame (a probe) joins no connection.
	frameHello
)

// reply error kinds
const (
	replyOK byte = iota
	replyExit
	replyCallErr
	replyAppErr
)

var errMalformed = errors.New("malformed frame")

// RemoteReason is an exit reason or error that came from another node and
// is not one of the standard reasons; it keeps the remote text.
type RemoteReason struct{ Text string }

func (r *RemoteReason) Error() string { return r.Text }

func reasonFromText(s string) process.Reason {
	if r := process.StandardReason(s); r != nil {
		return r
	}
	return &RemoteReason{Text: s}
}

func reasonText(r process.Reason) string {
	if r == nil {
		return process.Normal.Error()
	}
	return r.Error()
}

type encoder struct{ b []byte }

// Frames are copied by the link (or by the connection's dial queue), so
// encoders are reused.
var encoders = sync.Pool{New: func() any { return &encoder{b: make([]byte, 0, 256)} }}

func getEncoder() *encoder {
	e := encoders.Get().(*encoder)
	e.b = e.b[:0]
	return e
}

func putEncoder(e *encoder) {
	if cap(e.b) <= 64<<10 {
		encoders.Put(e)
	}
}

func (e *encoder) byte1(c byte)      { e.b = append(e.b, c) }
func (e *encoder) uint(v uint64)     { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) str(s string)      { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(s []byte)    { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) pid(p process.PID) { e.str(p.Node); e.uint(p.Incarnation); e.uint(p.ID) }
func (e *encoder) value(v any) error {
	var err error
	e.b, err = codec.Append(e.b, v)
	return err
}

// decoder reads a frame; the first error sticks and every later read
// returns zero values, so decoding code checks once at the end.
type decoder struct {
	b      []byte
	err    error
	intern [2]string // node names that repeat in almost every frame
	// valid[i]: intern[i] is a valid node name (process.ValidateNodeName),
	// checked once, not per PID.
	valid [2]bool
	// unregistered: the frame's last value is of a type this node has
	// not registered (codec.ErrUnregistered). The frame is well formed;
	// it cannot be delivered, and the link stays up.
	unregistered error
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errMalformed, why)
	}
}

func (d *decoder) byte1() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("short frame")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) raw() []byte {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length beyond frame")
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) str() string {
	s, _ := d.interned()
	return s
}

// interned reads a string; known says it is one of d.intern that is a
// valid node name.
func (d *decoder) interned() (_ string, known bool) {
	s := d.raw()
	for i, k := range d.intern {
		if k != "" && string(s) == k {
			return k, d.valid[i]
		}
	}
	return string(s), false
}

func (d *decoder) pid() process.PID {
	name, known := d.interned()
	p := process.PID{Node: name, Incarnation: d.uint(), ID: d.uint()}
	if d.err == nil && !known && !p.IsZero() {
		if err := process.ValidateNodeName(p.Node); err != nil {
			d.fail("bad pid: " + err.Error())
		}
	}
	return p
}

func (d *decoder) value() any {
	if d.err != nil {
		return nil
	}
	v, n, err := codec.Decode(d.b)
	if errors.Is(err, codec.ErrUnregistered) {
		// Every frame ends with its value: skip it.
		d.unregistered, d.b = err, nil
		return nil
	}
	if err != nil {
		d.err = err
		return nil
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}
