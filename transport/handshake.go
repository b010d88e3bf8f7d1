package transport

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"unicode/utf8"
)

// Link handshake (after the one-byte connection preamble and, with TLS, after
// the TLS handshake):
//
//	client → server  hello{version, cluster, name, incarnation, addr, nonce}
//	server → client  hello{…}                  (or close frame: mismatch, refused, …)
//	client → server  auth = HMAC(k, "client", helloC, helloS, tlsBinding)
//	server → client  auth = HMAC(k, "server", helloC, helloS, tlsBinding)
//
// k is derived from the cluster secret (linkKey), so the secret never travels.
// The MACs cover both hellos byte for byte, hence both nonces, names,
// incarnations and addresses; the role string stops a MAC being reflected
// back. The server answers with its MAC only after checking the client's, so
// an unauthenticated dialer never obtains a MAC it could attack offline. With
// TLS, keying material exported from the TLS session is mixed in, binding the
// proof to that one TLS connection.
//
// Every field has a hard size limit and the hello must be consumed exactly:
// this code runs on untrusted input and is fuzzed (FuzzHandshake).
const (
	protoVersion = 1

	nonceLen = 32
	macLen   = sha256.Size

	maxClusterLen = 128
	maxNameLen    = 255
	maxAddrLen    = 255

	// maxHandshakeFrame bounds every frame read before authentication, so
	// an unauthenticated peer cannot make us allocate much.
	maxHandshakeFrame = 1024

	roleClient = "client"
	roleServer = "server"

	tlsExporterLabel = "EXPORTER-arsenal-link-v1"
)

// PeerInfo identifies the node at the other end of a Link, as it introduced
// itself in the (authenticated) handshake.
type PeerInfo struct {
	Name        string // node name, "name@host"
	Incarnation uint64 // changes every time the peer node starts
	Addr        string // the peer's advertised node address, host:port
}

type hello struct {
	version     byte
	cluster     string
	name        string
	incarnation uint64
	addr        string
	nonce       [nonceLen]byte
}

func (h *hello) marshal() []byte {
	b := make([]byte, 0, 1+3+len(h.cluster)+len(h.name)+len(h.addr)+8+nonceLen)
	b = append(b, h.version)
	b = appendStr8(b, h.cluster)
	b = appendStr8(b, h.name)
	b = binary.BigEndian.AppendUint64(b, h.incarnation)
	b = appendStr8(b, h.addr)
	return append(b, h.nonce[:]...)
}

func appendStr8(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

// parseHello decodes and validates a hello. Any deviation is an error; the
// version is checked first so that a future layout yields ErrVersion rather
// than a confusing field error.
func parseHello(b []byte) (hello, error) {
	var h hello
	if len(b) == 0 {
		return h, fmt.Errorf("%w: empty hello", ErrProtocol)
	}
	h.version = b[0]
	if h.version != protoVersion {
		return h, detailed(ErrVersion, fmt.Sprintf("peer speaks version %d, we speak %d", h.version, protoVersion))
	}
	b = b[1:]
	var err error
	if h.cluster, b, err = readStr8(b, "cluster name", maxClusterLen); err != nil {
		return h, err
	}
	if h.name, b, err = readStr8(b, "node name", maxNameLen); err != nil {
		return h, err
	}
	if len(b) < 8 {
		return h, fmt.Errorf("%w: hello truncated at incarnation", ErrProtocol)
	}
	h.incarnation = binary.BigEndian.Uint64(b)
	b = b[8:]
	if h.addr, b, err = readStr8(b, "address", maxAddrLen); err != nil {
		return h, err
	}
	if _, _, err := net.SplitHostPort(h.addr); err != nil {
		return h, fmt.Errorf("%w: hello address %q: %v", ErrProtocol, h.addr, err)
	}
	if len(b) != nonceLen {
		return h, fmt.Errorf("%w: hello nonce is %d bytes, want %d", ErrProtocol, len(b), nonceLen)
	}
	copy(h.nonce[:], b)
	return h, nil
}

func readStr8(b []byte, what string, limit int) (string, []byte, error) {
	if len(b) < 1 {
		return "", nil, fmt.Errorf("%w: hello truncated at %s", ErrProtocol, what)
	}
	n := int(b[0])
	b = b[1:]
	if len(b) < n {
		return "", nil, fmt.Errorf("%w: hello truncated in %s", ErrProtocol, what)
	}
	s := string(b[:n])
	if err := checkText(s, limit); err != nil {
		return "", nil, fmt.Errorf("%w: hello %s: %v", ErrProtocol, what, err)
	}
	return s, b[n:], nil
}

// checkText is the rule for names and addresses on the wire and in Config:
// non-empty, bounded, valid UTF-8, no control characters (they end up in logs).
func checkText(s string, limit int) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > limit {
		return fmt.Errorf("%d bytes, limit %d", len(s), limit)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("contains control characters")
		}
	}
	return nil
}

// detailError is a sentinel plus detail. The detail alone is what we send to
// the peer in a close frame; the peer prefixes its own copy of the sentinel.
type detailError struct {
	sentinel error
	detail   string
}

func detailed(sentinel error, detail string) error {
	return &detailError{sentinel: sentinel, detail: detail}
}

func (e *detailError) Error() string {
	if e.detail == "" {
		return e.sentinel.Error()
	}
	return e.sentinel.Error() + ": " + e.detail
}

func (e *detailError) Unwrap() error { return e.sentinel }

// handshaker holds our side of the handshake.
type handshaker struct {
	cluster     string
	name        string
	incarnation uint64
	addr        string
	key         []byte
	// check vets the peer before we prove anything to it (fault rules); nil
	// accepts everyone.
	check func(name, addr string) error
	// accept vets an authenticated client (server side); nil accepts.
	accept func(PeerInfo) error
}

func (h *handshaker) hello() (hello, error) {
	m := hello{version: protoVersion, cluster: h.cluster, name: h.name, incarnation: h.incarnation, addr: h.addr}
	if _, err := rand.Read(m.nonce[:]); err != nil {
		return m, fmt.Errorf("%w: nonce: %v", ErrHandshake, err)
	}
	return m, nil
}

// client runs the dialing side. w writes to the peer, fr reads from it;
// binding is TLS exported keying material or nil. Like server, it returns
// the peer's claimed identity with errors that happen after its hello.
func (h *handshaker) client(w io.Writer, fr *frameReader, binding []byte) (PeerInfo, error) {
	mine, err := h.hello()
	if err != nil {
		return PeerInfo{}, err
	}
	helloC := mine.marshal()
	if err := writeFrame(w, frameHello, helloC); err != nil {
		return PeerInfo{}, hsIOErr("sending hello", err)
	}
	helloS, err := expect(fr, frameHello, "reading hello")
	if err != nil {
		return PeerInfo{}, err
	}
	peer, err := parseHello(helloS)
	if err == nil {
		err = h.vet(peer)
	}
	if err != nil {
		return peer.info(), refuse(w, err)
	}
	if err := writeFrame(w, frameAuth, h.mac(roleClient, helloC, helloS, binding)); err != nil {
		return peer.info(), hsIOErr("sending auth", err)
	}
	mac, err := expect(fr, frameAuth, "reading auth")
	if err != nil {
		return peer.info(), err
	}
	if !hmac.Equal(mac, h.mac(roleServer, helloC, helloS, binding)) {
		return peer.info(), refuse(w, ErrAuth)
	}
	return peer.info(), nil
}

// server runs the accepting side; see client. On failure after the
// client's hello parsed, it still returns the identity the client claimed
// (unverified), for logs.
func (h *handshaker) server(w io.Writer, fr *frameReader, binding []byte) (PeerInfo, error) {
	helloC, err := expect(fr, frameHello, "reading hello")
	if err != nil {
		return PeerInfo{}, err
	}
	peer, err := parseHello(helloC)
	if err == nil {
		err = h.vet(peer)
	}
	if err != nil {
		return peer.info(), refuse(w, err)
	}
	mine, err := h.hello()
	if err != nil {
		return peer.info(), err
	}
	helloS := mine.marshal()
	if err := writeFrame(w, frameHello, helloS); err != nil {
		return peer.info(), hsIOErr("sending hello", err)
	}
	mac, err := expect(fr, frameAuth, "reading auth")
	if err != nil {
		return peer.info(), err
	}
	if !hmac.Equal(mac, h.mac(roleClient, helloC, helloS, binding)) {
		return peer.info(), refuse(w, ErrAuth)
	}
	if h.accept != nil {
		if err := h.accept(peer.info()); err != nil {
			return peer.info(), refuse(w, err)
		}
	}
	if err := writeFrame(w, frameAuth, h.mac(roleServer, helloC, helloS, binding)); err != nil {
		return peer.info(), hsIOErr("sending auth", err)
	}
	return peer.info(), nil
}

func (m *hello) info() PeerInfo {
	return PeerInfo{Name: m.name, Incarnation: m.incarnation, Addr: m.addr}
}

// vet decides whether we talk to this peer at all.
func (h *handshaker) vet(peer hello) error {
	if peer.cluster != h.cluster {
		return detailed(ErrClusterMismatch, fmt.Sprintf("want %q got %q", h.cluster, peer.cluster))
	}
	if peer.name == h.name {
		return detailed(ErrSameName, fmt.Sprintf("%q", peer.name))
	}
	if h.check != nil {
		return h.check(peer.name, peer.addr)
	}
	return nil
}

func (h *handshaker) mac(role string, helloC, helloS, binding []byte) []byte {
	m := hmac.New(sha256.New, h.key)
	var n [4]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		m.Write(n[:])
		m.Write(b)
	}
	field([]byte("arsenal/v1/link-mac"))
	field([]byte(role))
	field(helloC)
	field(helloS)
	field(binding)
	return m.Sum(nil)
}

// expect reads one handshake frame of type want. A close frame from the peer
// becomes its *PeerError; anything else is a handshake error.
func expect(fr *frameReader, want byte, stage string) ([]byte, error) {
	typ, p, err := fr.next()
	if err != nil {
		return nil, hsIOErr(stage, err)
	}
	switch typ {
	case want:
		if want == frameAuth && len(p) != macLen {
			return nil, fmt.Errorf("%w: %s: auth is %d bytes, want %d", ErrHandshake, stage, len(p), macLen)
		}
		return p, nil
	case frameClose:
		return nil, parseClose(p)
	default:
		return nil, fmt.Errorf("%w: %s: unexpected frame type 0x%02x", ErrHandshake, stage, typ)
	}
}

// refuse tells the peer why we stop (best effort) and returns err.
func refuse(w io.Writer, err error) error {
	detail := ""
	var de *detailError
	if errors.As(err, &de) {
		detail = de.detail
	} else if !isSentinel(err) {
		detail = err.Error()
	}
	_ = writeFrame(w, frameClose, closePayload(errCode(err), detail))
	return err
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrAuth, ErrClusterMismatch, ErrVersion, ErrRefused, ErrSameName, ErrNameTaken} {
		if err == s {
			return true
		}
	}
	return false
}

func hsIOErr(stage string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: peer closed the connection", ErrHandshake, stage)
	}
	return fmt.Errorf("%w: %s: %w", ErrHandshake, stage, err)
}

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	_, err := w.Write(appendFrame(make([]byte, 0, frameHeaderLen+len(payload)), typ, payload))
	return err
}
