package node

import (
	"reflect"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/process"
)

// borrowRecord travels as a compact record; borrowCBOR (a []string field)
// as a CBOR map.
type borrowRecord struct {
	Name string
	Data []byte
	N    int64
}

type borrowCBOR struct {
	Name string
	Data []byte
	Tags []string
}

// The links' handler borrows each frame (transport.Link.SetBorrowingHandler:
// the link reads the next frame into the same memory), so nothing that
// handleFrame delivers may point into the frame. Every message kind that
// carries bytes or strings is delivered, then its frame is overwritten,
// and what the process got must be unchanged.
func TestDeliveredMessagesDoNotAliasTheFrame(t *testing.T) {
	codec.MustRegister[borrowRecord]("node.test.borrowRecord")
	codec.MustRegister[borrowCBOR]("node.test.borrowCBOR")
	n, to, got := loneCollector(t, "b@127.0.0.1", "borrow", 16)
	const peer = "p@127.0.0.1"
	from := process.PID{Node: peer, Incarnation: 1, ID: 7}
	msgs := []any{
		"a string message",
		[]byte("a byte slice message"),
		map[string]any{"k": "v", "b": []byte("bytes in generic data"), "l": []any{"x", []byte("y")}},
		borrowRecord{Name: "record", Data: []byte("record bytes"), N: 42},
		borrowCBOR{Name: "cbor", Data: []byte("cbor bytes"), Tags: []string{"t1", "t2"}},
	}
	tp, tc := n.peer(peer, true), &conn{}
	for _, m := range msgs {
		e := encoder{}
		e.byte1(frameSend)
		e.pid(from)
		e.pid(to)
		e.byte1(0)
		if err := e.value(m); err != nil {
			t.Fatal(err)
		}
		if err := n.handleFrame(tp, tc, e.b); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		for i := range e.b {
			e.b[i] = 0xAA // the link's next frame, in the same memory
		}
	}
	for _, want := range msgs {
		select {
		case m := <-got:
			if !reflect.DeepEqual(m, want) {
				t.Errorf("delivered %#v, want %#v: it shared the frame's memory", m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%T not delivered", want)
		}
	}
}
