package transport

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns for a refused or broken
// link wraps exactly one of them, so callers branch with errors.Is and the HTTP
// layer can map them to codes; the wrapping error carries the details (which
// peer, which names, who refused).
var (
	// ErrClosed: the Network or the Link was closed locally.
	ErrClosed = errors.New("transport: closed")
	// ErrPeerClosed: the peer closed the link (cleanly or by dropping the connection).
	ErrPeerClosed = errors.New("transport: link closed by peer")
	// ErrAuth: the two sides do not hold the same cluster secret.
	ErrAuth = errors.New("transport: authentication failed: secrets differ")
	// ErrClusterMismatch: the two sides belong to differently named clusters.
	ErrClusterMismatch = errors.New("transport: cluster name mismatch")
	// ErrVersion: the peer speaks a protocol version we do not.
	ErrVersion = errors.New("transport: unsupported protocol version")
	// ErrSameName: the peer uses our own node name (a dial to ourselves, or a
	// misconfigured node).
	ErrSameName = errors.New("transport: peer has our node name")
	// ErrNameTaken: another live node of the cluster already uses the
	// dialling node's name (returned by Config.AcceptPeer).
	ErrNameTaken = errors.New("transport: node name already in use in the cluster")
	// ErrRefused: a fault rule refused or blocked the connection.
	ErrRefused = errors.New("transport: connection refused by fault rule")
	// ErrHandshake: the handshake broke (garbage, stall, timeout, early close).
	ErrHandshake = errors.New("transport: handshake failed")
	// ErrProtocol: the peer sent something the framing does not allow.
	ErrProtocol = errors.New("transport: protocol error")
	// ErrFrameTooLarge: a frame exceeded MaxFrameSize.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrKeepalive: nothing arrived from the peer for the keepalive timeout.
	ErrKeepalive = errors.New("transport: keepalive timeout")
	// ErrOverload: a frame would have taken the link's send queue past
	// SendQueueBytes (the peer is not keeping up), so the link was closed
	// rather than block the sender or drop the frame silently.
	ErrOverload = errors.New("transport: send queue over its bound")
)

// Close codes travel in close frames so that the side that did not refuse
// still learns precisely why (for example "secrets differ" rather than EOF).
//
// The values are wire format: never renumber them.
const (
	codeNormal          byte = 0
	codeProtocol        byte = 1
	codeClusterMismatch byte = 2
	codeAuth            byte = 3
	codeVersion         byte = 4
	codeRefused         byte = 5
	codeSameName        byte = 6
	codeFrameTooLarge   byte = 7
	codeKeepalive       byte = 8
	codeNameTaken       byte = 9
	codeOverload        byte = 10
)

// codeErr maps a close code to its sentinel.
func codeErr(code byte) error {
	switch code {
	case codeNormal:
		return ErrPeerClosed
	case codeClusterMismatch:
		return ErrClusterMismatch
	case codeAuth:
		return ErrAuth
	case codeVersion:
		return ErrVersion
	case codeRefused:
		return ErrRefused
	case codeSameName:
		return ErrSameName
	case codeNameTaken:
		return ErrNameTaken
	case codeFrameTooLarge:
		return ErrFrameTooLarge
	case codeKeepalive:
		return ErrKeepalive
	case codeOverload:
		return ErrOverload
	default:
		return ErrProtocol
	}
}

// errCode maps an error to the close code sent to the peer.
func errCode(err error) byte {
	switch {
	case err == nil, errors.Is(err, ErrClosed):
		return codeNormal
	case errors.Is(err, ErrClusterMismatch):
		return codeClusterMismatch
	case errors.Is(err, ErrAuth):
		return codeAuth
	case errors.Is(err, ErrVersion):
		return codeVersion
	case errors.Is(err, ErrRefused):
		return codeRefused
	case errors.Is(err, ErrSameName):
		return codeSameName
	case errors.Is(err, ErrNameTaken):
		return codeNameTaken
	case errors.Is(err, ErrFrameTooLarge):
		return codeFrameTooLarge
	case errors.Is(err, ErrKeepalive):
		return codeKeepalive
	case errors.Is(err, ErrOverload):
		return codeOverload
	default:
		return codeProtocol
	}
}

// PeerError is a refusal or close reason reported by the peer in a close
// frame. It unwraps to the matching sentinel (ErrAuth, ErrClusterMismatch, …).
type PeerError struct {
	Code   byte
	Reason string // the peer's own words, already length-limited
}

func (e *PeerError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("%v (reported by peer)", codeErr(e.Code))
	}
	return fmt.Sprintf("%v: %s (reported by peer)", codeErr(e.Code), e.Reason)
}

func (e *PeerError) Unwrap() error { return codeErr(e.Code) }
