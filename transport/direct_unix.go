//go:build unix

package transport

import (
	"errors"
	"syscall"
)

const directWriteSupported = true

// tryWrite writes as much of l.dbuf as the socket takes now, without
// waiting: it returns the bytes written, and an error only for a broken
// socket. EAGAIN (the socket buffer is full), a passed write deadline or a
// socket being closed return what was written so far and no error; the
// writer goroutine (or the close) deals with the rest. The caller holds
// l.wmu.
func (l *Link) tryWrite() (int, error) {
	l.dn, l.derr = 0, nil
	if l.dfn == nil {
		l.dfn = l.writeFD // one closure per link, not one per write
	}
	_ = l.raw.Write(l.dfn) // its own error: deadline passed or closing, see above
	return l.dn, l.derr
}

// writeFD is the body of tryWrite's RawConn.Write: true means "do not wait
// for the socket to become writable".
func (l *Link) writeFD(fd uintptr) bool {
	b := l.dbuf
	for l.dn < len(b) {
		k, e := syscall.Write(int(fd), b[l.dn:])
		if k > 0 {
			l.dn += k
		}
		switch {
		case e == nil:
		case errors.Is(e, syscall.EINTR):
		case errors.Is(e, syscall.EAGAIN):
			return true
		default:
			l.derr = e
			return true
		}
	}
	return true
}
