package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"
)

// fuzzHello is a well-formed hello for seeds.
func fuzzHello(cluster string) []byte {
	h := hello{version: protoVersion, cluster: cluster, name: "peer@host", incarnation: 7, addr: "127.0.0.1:4000"}
	return h.marshal()
}

func fuzzHandshaker() *handshaker {
	return &handshaker{
		cluster: "fuzz", name: "me@host", incarnation: 1, addr: "127.0.0.1:1",
		key: linkKey([]byte("secret"), "fuzz"),
	}
}

// classified reports whether err wraps one of the package's sentinels, i.e.
// the handshake said why it failed in a way callers can branch on.
func classified(err error) bool {
	for _, s := range []error{ErrHandshake, ErrProtocol, ErrVersion, ErrAuth, ErrClusterMismatch, ErrRefused, ErrSameName, ErrNameTaken, ErrFrameTooLarge, ErrPeerClosed, ErrKeepalive} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzHandshake plays arbitrary bytes as the peer's half of the handshake, on
// both the accepting and the dialling side. It must fail cleanly: no panic,
// no success without the secret, and an error that wraps a sentinel.
func FuzzHandshake(f *testing.F) {
	good := fuzzHello("fuzz")
	f.Add([]byte{})
	f.Add(appendFrame(nil, frameHello, good))
	f.Add(append(appendFrame(nil, frameHello, good), appendFrame(nil, frameAuth, make([]byte, macLen))...))
	f.Add(appendFrame(nil, frameHello, fuzzHello("other")))
	f.Add(appendFrame(nil, frameClose, closePayload(codeAuth, "")))
	f.Add(appendFrame(nil, frameClose, []byte{codeClusterMismatch, 0xff, '\n'}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, frameHello})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add(append([]byte{kindGossip}, streamPreamble("127.0.0.1:1", "n")...))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, side := range []string{"server", "client"} {
			h := fuzzHandshaker()
			fr := newFrameReader(bytes.NewReader(data), maxHandshakeFrame)
			var peer PeerInfo
			var err error
			if side == "server" {
				peer, err = h.server(io.Discard, fr, nil)
			} else {
				peer, err = h.client(io.Discard, fr, nil)
			}
			if err == nil {
				t.Fatalf("%s handshake succeeded without the secret: %+v", side, peer)
			}
			if !classified(err) {
				t.Fatalf("%s handshake error is not classified: %v", side, err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("%s error text is not valid UTF-8: %q", side, err.Error())
			}
		}
		// The memberlist stream preamble is parsed from the same untrusted
		// stream; it must not panic either.
		addr, name, err := readStreamPreamble(bytes.NewReader(data))
		if err == nil && (!utf8.ValidString(addr) || !utf8.ValidString(name)) {
			t.Fatalf("preamble yields invalid text %q %q", addr, name)
		}
	})
}

// FuzzFrameReader feeds arbitrary bytes to the frame decoder and the hello
// and close-frame parsers.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendFrame(appendFrame(nil, frameData, []byte("hello")), framePing, make([]byte, 8)))
	f.Add(appendFrame(nil, frameClose, closePayload(codeAuth, "reason")))
	f.Add([]byte{0, 0, 0, 10, frameData, 1, 2})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, frameData})
	f.Add(fuzzHello("c"))

	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), limit)
		// nextInto (reused memory) must read exactly what next does.
		fr2 := newFrameReader(bytes.NewReader(data), limit)
		for range 1000 {
			typ, p, err := fr.next()
			typ2, p2, err2 := fr2.nextInto()
			if (err == nil) != (err2 == nil) || (err == nil && (typ != typ2 || !bytes.Equal(p, p2))) {
				t.Fatalf("nextInto read %x %x %v, next %x %x %v", typ2, p2, err2, typ, p, err)
			}
			if err != nil {
				break
			}
			if len(p) > limit {
				t.Fatalf("frame of %d bytes passed a %d limit", len(p), limit)
			}
			if typ == frameClose {
				pe := parseClose(p)
				if !utf8.ValidString(pe.Reason) || len(pe.Reason) > maxReasonLen*3 {
					t.Fatalf("close reason not sanitized: %q", pe.Reason)
				}
				_ = pe.Error()
			}
		}
		// A hello that parses must re-encode to the same bytes: one encoding
		// per message means the MAC covers exactly what was checked.
		if h, err := parseHello(data); err == nil {
			if !bytes.Equal(h.marshal(), data) {
				t.Fatalf("hello does not round-trip: %x", data)
			}
		}
	})
}
