package control

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"
)

// MaxSocketPath is the longest unix socket path every platform accepts
// (sun_path is 104 bytes on the BSDs, 108 on Linux, with the final NUL).
const MaxSocketPath = 103

// ServeSocket serves the control protocol on a unix socket at path. It is the control channel of background nodes
// ('arsenal cluster'), which have no stdin to read commands from.
//
// Each connection is a session speaking the same JSON lines as
// --control stdio: commands in; replies, and the events of watchers the
// session spawned, out. Unlike stdio, the end of a session does not stop
// the node; only the "stop" command does. The socket is made mode 0600,
// and it should live in a directory only its owner can enter (a cluster's
// state directory is 0700): whoever can connect controls the node.
//
// It listens before it returns, so a bad path is reported at once, and
// serves in the background; Close stops serving, ends the sessions and
// removes the socket.
func (srv *Server) ServeSocket(path string) (io.Closer, error) {
	if len(path) > MaxSocketPath {
		return nil, fmt.Errorf("control socket %s: path longer than %d bytes (a unix socket limit); use a shorter directory", path, MaxSocketPath)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &socketServer{ln: ln, srv: srv, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// removeStaleSocket removes a socket left behind by a node that died
// without cleaning up. A live socket (another node answers on it) and any
// file that is not a socket are left alone, with an error.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: a file that is not a socket is in the way", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("control socket %s: another process is serving on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket: removing a stale socket: %w", err)
	}
	return nil
}

type socketServer struct {
	ln  *net.UnixListener
	srv *Server
	wg  sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func (s *socketServer) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.session(conn)
	}
}

// session runs one connection with a controller of its own, so replies
// and events go back to the client that asked.
func (s *socketServer) session(conn net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	s.srv.session(conn).serve(conn)
}

// Close stops accepting, ends every session and removes the socket.
func (s *socketServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for conn := range s.conns {
		conn.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close() // removes the socket file
	s.wg.Wait()
	return err
}
