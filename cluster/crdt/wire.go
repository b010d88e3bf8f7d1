package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/fxamacker/cbor/v2"

	"github.com/arsenal-go/arsenal/codec"
)

// Version is the first byte of every encoded delta or state. A change to
// the encoding takes the next number; a node refuses every other with
// ErrVersion, so mixed versions fail clearly instead of merging garbage.
const Version byte = 1

var (
	// ErrVersion: the message was written by another version of the
	// encoding (or is not one).
	ErrVersion = errors.New("crdt: unknown encoding version")
	// ErrTooLarge: the message is over the decoder's Limits.
	ErrTooLarge = errors.New("crdt: message over the decoding limits")
	// ErrMalformed wraps every other decoding error.
	ErrMalformed = errors.New("crdt: malformed message")
)

// Limits bound what Decode accepts from a peer.
type Limits struct {
	// MaxBytes bounds the encoded message.
	MaxBytes int
	// MaxEntries bounds the entries of one message, and the pairs of any
	// map inside an entry.
	MaxEntries int
	// MaxNesting bounds the nesting of arrays and maps (the message's
	// array is level 1, an entry level 2).
	MaxNesting int
}

// DefaultLimits are Decode's: 32 MiB (above memberlist's 20 MiB push-pull
// bound), a million entries, nesting 16.
var DefaultLimits = Limits{MaxBytes: 32 << 20, MaxEntries: 1 << 20, MaxNesting: 16}

// Encode returns the wire form of entries: Version, then a CBOR array of
// the entries (their CBOR struct encoding). One entry is a delta; all of
// a Map's Values are its full state. It panics only if an entry's type
// cannot be encoded as CBOR at all (a channel or function field), a
// programming error the first test of the type finds.
func Encode[T any, P Value[T]](entries []P) []byte {
	buf := bufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 16<<20 {
			bufs.Put(buf)
		}
	}()
	buf.Reset()
	buf.WriteByte(Version)
	if err := encMode.MarshalToBuffer(entries, buf); err != nil {
		panic(fmt.Sprintf("crdt: entry type %T does not encode: %v", entries, err))
	}
	return bytes.Clone(buf.Bytes())
}

// bufs are Encode's scratch buffers: the message is built once and copied
// out at its size.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encMode is the codec package's (core deterministic encoding, times with
// nanoseconds), writing into a buffer.
var encMode = func() cbor.UserBufferEncMode {
	eo := cbor.CoreDetEncOptions()
	eo.Time = cbor.TimeRFC3339Nano
	em, err := eo.UserBufferEncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// Decode decodes what Encode wrote, within DefaultLimits.
func Decode[T any, P Value[T]](b []byte) ([]P, error) {
	return DecodeWith[T, P](b, DefaultLimits)
}

// DecodeWith decodes what Encode wrote, within lim. It returns an error,
// never panics, for any input that is not an encoding of entries within
// the limits, and for a null entry or one with an empty key.
func DecodeWith[T any, P Value[T]](b []byte, lim Limits) ([]P, error) {
	if lim.MaxBytes > 0 && len(b) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(b), lim.MaxBytes)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: %d (this node speaks %d)", ErrVersion, b[0], Version)
	}
	dm, err := decMode(lim)
	if err != nil {
		return nil, err
	}
	var es []P
	if err := dm.Unmarshal(b[1:], &es); err != nil {
		var ae *cbor.MaxArrayElementsError
		var me *cbor.MaxMapPairsError
		var ne *cbor.MaxNestedLevelError
		if errors.As(err, &ae) || errors.As(err, &me) || errors.As(err, &ne) {
			return nil, fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if lim.MaxEntries > 0 && len(es) > lim.MaxEntries {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrTooLarge, len(es), lim.MaxEntries)
	}
	for i, e := range es {
		if e == nil {
			return nil, fmt.Errorf("%w: entry %d is null", ErrMalformed, i)
		}
		if e.Key() == "" {
			return nil, fmt.Errorf("%w: entry %d has an empty key", ErrMalformed, i)
		}
	}
	return es, nil
}

var (
	modesMu sync.Mutex
	modes   = map[Limits]cbor.DecMode{}
	// defaultMode is DefaultLimits' mode, read without the lock.
	defaultMode atomic.Pointer[cbor.DecMode]
)

// decMode returns the decoding mode of lim (made once per Limits): the
// codec package's strict options (no indefinite lengths, no duplicate or
// unknown fields, no tags) with lim's bounds.
func decMode(lim Limits) (cbor.DecMode, error) {
	if lim == DefaultLimits {
		if dm := defaultMode.Load(); dm != nil {
			return *dm, nil
		}
	}
	modesMu.Lock()
	defer modesMu.Unlock()
	if dm, ok := modes[lim]; ok {
		return dm, nil
	}
	n := lim.MaxEntries
	if n <= 0 {
		n = DefaultLimits.MaxEntries
	}
	nest := lim.MaxNesting
	if nest <= 0 {
		nest = DefaultLimits.MaxNesting
	}
	// max(…, 4) and max(…, 16): the CBOR library's least limits.
	dm, err := codec.StrictDecOptions(max(nest, 4), max(n, 16)).DecMode()
	if err != nil {
		return nil, fmt.Errorf("crdt: decoding limits %+v: %w", lim, err)
	}
	if len(modes) < 64 {
		modes[lim] = dm
	}
	if lim == DefaultLimits {
		defaultMode.Store(&dm)
	}
	return dm, nil
}
