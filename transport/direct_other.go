//go:build !unix

package transport

const directWriteSupported = false

func (l *Link) tryWrite() (int, error) { return 0, nil }
