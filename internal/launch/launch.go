// Package launch starts Arsenal node processes (`arsenal node`, or any
// binary built with arsenal.Main) with the control
// protocol on their stdin and stdout, for `arsenal dev` and the
// clustertest harness. A child dies with its parent: it is in a process
// group of its own, gets SIGKILL from the kernel if the parent thread dies
// (Linux's parent-death signal), and exits by itself when its stdin closes.
package launch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/arsenal-go/arsenal/control"
)

// Spec describes one child.
type Spec struct {
	Binary string
	Args   []string
	Env    []string // added to the parent's environment
	Stderr io.Writer
	// StartTimeout bounds the wait for the "ready" event (default 30 s).
	StartTimeout time.Duration
}

// Child is a running node process.
type Child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	Ready  control.Ready
	events chan control.Line

	mu      sync.Mutex
	pending map[uint64]chan control.Line
	nextID  atomic.Uint64
	wmu     sync.Mutex

	exited   chan struct{}
	exitErr  error
	readDone chan struct{} // closed when stdout ends
	// stray is the first line on stdout that is not the control
	// protocol's (a binary that does not call arsenal.Main), for the
	// start error.
	stray    string
	attached bool // from Attach: cmd is nil
}

// ErrExited is returned by calls to a child that has exited.
var ErrExited = errors.New("node process has exited")

// Start starts a child and waits for its "ready" event.
func Start(ctx context.Context, s Spec) (*Child, error) {
	cmd := exec.Command(s.Binary, s.Args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stderr = s.Stderr
	cmd.SysProcAttr = sysProcAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// stdout through a pipe of our own, not cmd.StdoutPipe: Wait closes
	// that one as soon as the process exits, and a line the process wrote
	// just before (the stray line a failure names) could be lost unread.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = stdoutW
	if err := cmd.Start(); err != nil {
		stdout.Close()
		stdoutW.Close()
		return nil, fmt.Errorf("start %s: %w", s.Binary, err)
	}
	stdoutW.Close() // the child holds its own copy
	c := &Child{cmd: cmd, stdin: stdin, events: make(chan control.Line, 4096),
		pending: map[uint64]chan control.Line{}, exited: make(chan struct{}), readDone: make(chan struct{})}
	ready := make(chan control.Ready, 1)
	go c.read(stdout, ready)
	go func() {
		c.exitErr = cmd.Wait()
		close(c.exited)
	}()
	timeout := s.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ready:
		if err := control.CheckVersion("node "+r.Name+" ("+s.Binary+")", r.Protocol); err != nil {
			c.Kill()
			return nil, err
		}
		c.Ready = r
		return c, nil
	case <-c.exited:
		select { // the rest of stdout, for its first stray line
		case <-c.readDone:
		case <-time.After(time.Second):
		}
		how := "exit status 0"
		if c.exitErr != nil {
			how = c.exitErr.Error()
		}
		return nil, fmt.Errorf("node process %s exited (%s) before it reported \"ready\" on its control channel (stdout); a binary whose main calls arsenal.Main (or 'arsenal node') does, with --control stdio%s", s.Binary, how, c.strayNote())
	case <-t.C:
		c.Kill()
		return nil, fmt.Errorf("node process not ready within %s: %s never reported \"ready\" on its control channel (stdout); a binary whose main calls arsenal.Main (or 'arsenal node') does, with --control stdio%s", timeout, s.Binary, c.strayNote())
	case <-ctx.Done():
		c.Kill()
		return nil, ctx.Err()
	}
}

// Attach connects to a running node's control socket (a node this process
// did not start, such as one of 'arsenal cluster'): it checks the
// protocol version with "hello" and reads the node's identity with
// "ready". The Child then answers Call and Events like a started one; it
// counts as exited when the connection closes, and Kill, Stop and Signal
// refuse: the node is not this process's child.
func Attach(ctx context.Context, socket string) (*Child, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", socket, err)
	}
	c := &Child{stdin: conn, events: make(chan control.Line, 4096), pending: map[uint64]chan control.Line{},
		exited: make(chan struct{}), attached: true}
	go func() {
		c.read(conn, nil)
		c.exitErr = ErrExited
		close(c.exited)
	}()
	var h control.Hello
	if err := c.Call(ctx, "hello", control.Hello{Protocol: control.Version}, &h); err != nil {
		conn.Close()
		return nil, fmt.Errorf("attach %s: %w", socket, err)
	}
	if err := c.Call(ctx, "ready", nil, &c.Ready); err != nil {
		conn.Close()
		return nil, fmt.Errorf("attach %s: %w (a node from before the \"ready\" command?)", socket, err)
	}
	return c, nil
}

// ErrNotChild is returned by Kill, Stop and Signal on an attached node.
var ErrNotChild = errors.New("the node is attached, not started by this process: it is not ours to kill, stop or signal")

// Attached reports whether the child came from Attach.
func (c *Child) Attached() bool { return c.attached }

// strayNote describes the first stray line on stdout, if there was one.
func (c *Child) strayNote() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stray == "" {
		return ""
	}
	return fmt.Sprintf("; its stdout began with %q, which is not the control protocol", c.stray)
}

func (c *Child) read(stdout io.Reader, ready chan<- control.Ready) {
	if c.readDone != nil {
		defer close(c.readDone)
	}
	if f, ok := stdout.(*os.File); ok {
		defer f.Close()
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	sentReady := false
	for sc.Scan() {
		var l control.Line
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			c.mu.Lock()
			if c.stray == "" && len(sc.Bytes()) > 0 {
				c.stray = string(sc.Bytes()[:min(len(sc.Bytes()), 200)])
			}
			c.mu.Unlock()
			continue
		}
		if l.ID != 0 {
			c.mu.Lock()
			ch := c.pending[l.ID]
			delete(c.pending, l.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- l
			}
			continue
		}
		if l.Event == "ready" && !sentReady && ready != nil {
			var r control.Ready
			if json.Unmarshal(l.Data, &r) == nil {
				sentReady = true
				ready <- r
			}
			continue
		}
		select {
		case c.events <- l:
		default: // a harness that does not read events must not block the node
		}
	}
	c.mu.Lock()
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// Events delivers the child's events (other than "ready").
func (c *Child) Events() <-chan control.Line { return c.events }

// Call sends a command and decodes its result into out (may be nil).
func (c *Child) Call(ctx context.Context, cmd string, args, out any) error {
	id := c.nextID.Add(1)
	ch := make(chan control.Line, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	var raw json.RawMessage
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		raw = b
	}
	line, _ := json.Marshal(control.Command{ID: id, Cmd: cmd, Args: raw})
	c.wmu.Lock()
	_, err := c.stdin.Write(append(line, '\n'))
	c.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return fmt.Errorf("%s: %w", cmd, ErrExited)
	}
	select {
	case l, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: %w", cmd, ErrExited)
		}
		if !l.OK {
			return errors.New(l.Error)
		}
		if out != nil && len(l.Result) > 0 {
			return json.Unmarshal(l.Result, out)
		}
		return nil
	case <-c.exited:
		c.forget(id)
		return fmt.Errorf("%s: %w", cmd, ErrExited)
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("%s: %w", cmd, ctx.Err())
	}
}

func (c *Child) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// PID returns the OS process id.
func (c *Child) PID() int {
	if c.attached {
		return c.Ready.OSPID
	}
	return c.cmd.Process.Pid
}

// Exited is closed when the process has exited.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// ExitErr is the process's exit status, once Exited is closed.
func (c *Child) ExitErr() error { return c.exitErr }

// Signal sends sig to the child.
func (c *Child) Signal(sig syscall.Signal) error {
	if c.attached {
		return ErrNotChild
	}
	return c.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the exit. On an attached node it only
// closes the connection.
func (c *Child) Kill() {
	if c.attached {
		_ = c.stdin.Close()
		<-c.exited
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// Stop asks the node to leave and stop (SIGTERM), and kills it if it has
// not exited within timeout.
func (c *Child) Stop(timeout time.Duration) error {
	if c.attached {
		return ErrNotChild
	}
	select {
	case <-c.exited:
		return c.exitErr
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.exited:
		return c.exitErr
	case <-t.C:
		c.Kill()
		return fmt.Errorf("node did not stop within %s; killed", timeout)
	}
}

// CloseStdin closes the control channel; the node stops by itself.
func (c *Child) CloseStdin() error { return c.stdin.Close() }
