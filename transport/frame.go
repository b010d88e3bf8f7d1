package transport

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// Wire framing, shared by the handshake and established links:
//
//	u32 big-endian payload length | u8 frame type | payload
//
// Only frameData reaches the Link handler; the others are the link's own
// control traffic.
const (
	frameHeaderLen = 5

	frameData  byte = 0x01
	framePing  byte = 0x02 // payload: 8-byte sender timestamp, echoed in the pong
	framePong  byte = 0x03
	frameClose byte = 0x04 // payload: u8 close code | reason text
	frameHello byte = 0x10 // handshake only
	frameAuth  byte = 0x11 // handshake only

	// maxReasonLen bounds close-frame reasons we send and accept, so a peer
	// cannot fill our logs.
	maxReasonLen = 256
	// maxControlLen bounds ping, pong and close payloads on a link.
	maxControlLen = 1 + maxReasonLen
)

// appendFrame appends one encoded frame to dst.
func appendFrame(dst []byte, typ byte, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, typ)
	return append(dst, payload...)
}

// frameReader decodes frames from a buffered stream. It never allocates more
// than max bytes for one frame, whatever the length prefix says.
type frameReader struct {
	r   *bufio.Reader
	max int // largest accepted payload
	hdr [frameHeaderLen]byte
	buf []byte // reused by nextInto
}

// maxReusedFrame bounds the buffer that nextInto keeps between frames.
const maxReusedFrame = 64 << 10

func newFrameReader(r io.Reader, max int) *frameReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &frameReader{r: br, max: max}
}

// next returns the next frame. The payload is freshly allocated and owned by
// the caller. Errors: io.EOF at a clean frame boundary, io.ErrUnexpectedEOF
// inside a frame, ErrFrameTooLarge, ErrProtocol, or the stream's own error.
func (fr *frameReader) next() (typ byte, payload []byte, err error) {
	return fr.read(false)
}

// nextInto is next, with the payload in a buffer that the next call
// reuses (a fresh one for payloads over maxReusedFrame).
func (fr *frameReader) nextInto() (typ byte, payload []byte, err error) {
	return fr.read(true)
}

func (fr *frameReader) read(reuse bool) (typ byte, payload []byte, err error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[:4])
	typ = fr.hdr[4]
	if uint64(n) > uint64(fr.max) {
		return typ, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, fr.max)
	}
	switch typ {
	case frameData, frameHello, frameAuth:
	case framePing, framePong, frameClose:
		if n > maxControlLen {
			return typ, nil, fmt.Errorf("%w: control frame 0x%02x of %d bytes", ErrProtocol, typ, n)
		}
	default:
		return typ, nil, fmt.Errorf("%w: unknown frame type 0x%02x", ErrProtocol, typ)
	}
	if reuse && n <= maxReusedFrame {
		if cap(fr.buf) < int(n) {
			fr.buf = make([]byte, max(int(n), 512))
		}
		payload = fr.buf[:n]
	} else {
		payload = make([]byte, n)
	}
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return typ, nil, err
	}
	return typ, payload, nil
}

// closePayload encodes a close frame payload: code then a bounded reason.
func closePayload(code byte, reason string) []byte {
	reason = truncateUTF8(reason, maxReasonLen)
	b := make([]byte, 0, 1+len(reason))
	b = append(b, code)
	return append(b, reason...)
}

// parseClose decodes a close frame payload into a *PeerError. Invalid UTF-8
// is replaced so that the reason is always safe to log.
func parseClose(p []byte) *PeerError {
	if len(p) == 0 {
		return &PeerError{Code: codeProtocol, Reason: "empty close frame"}
	}
	reason := p[1:]
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	return &PeerError{Code: p[0], Reason: sanitize(string(reason))}
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sanitize makes peer-supplied text printable: invalid UTF-8 and control
// characters become U+FFFD.
func sanitize(s string) string {
	ok := utf8.ValidString(s)
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := make([]rune, 0, len(s))
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			r = utf8.RuneError
		}
		b = append(b, r)
	}
	return string(b)
}
