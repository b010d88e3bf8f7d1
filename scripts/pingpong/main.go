// Command pingpong measures the floor under a remote request/response: raw
// loopback TCP round trips of 8 bytes between two OS processes, in three
// shapes (docs/BENCHMARKS.md, issue 13).
//
//	go run ./scripts/pingpong -mode direct   # the caller writes and reads the socket itself
//	go run ./scripts/pingpong -mode handoff  # four goroutine hand-offs per round trip
//	go run ./scripts/pingpong -mode pipe     # handoff, the reply handed to the caller through a pipe
//
// direct: the caller writes its request and reads the reply; the server's
// one goroutine reads a request and writes it back. handoff: the shape of
// an actor runtime's call: on the client a reader goroutine hands each
// reply to the waiting caller over a channel; on the server the reader
// starts a goroutine per request, which writes the reply. pipe: handoff,
// but the client's reader hands each reply to the caller through an
// os.Pipe instead of a channel, so the caller waits in the runtime's
// poller and is found by the thread that ran the reader once the reader
// parks, instead of being readied (a ready wakes a second thread for an
// idle P: wakep). It prints the mean time per round trip after 1 000
// untimed ones, and fails if a reply does not match its request.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"time"
)

func main() {
	serve := flag.Bool("serve", false, "internal: run as the server process")
	mode := flag.String("mode", "direct", "direct | handoff | pipe")
	n := flag.Int("n", 20000, "timed round trips")
	flag.Parse()
	if *mode != "direct" && *mode != "handoff" && *mode != "pipe" {
		fail(fmt.Errorf("-mode %q: want direct, handoff or pipe", *mode))
	}
	if *serve {
		server(*mode != "direct")
		return
	}
	if err := client(*mode, *n); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pingpong:", err)
	os.Exit(1)
}

// server echoes 8-byte messages on the first connection until it closes.
func server(handoff bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	fmt.Println(ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		fail(err)
	}
	r := bufio.NewReader(c)
	for {
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return // the client closed the connection
		}
		if handoff {
			go func() { c.Write(b[:]) }()
		} else {
			c.Write(b[:])
		}
	}
}

func client(mode string, n int) error {
	cmd := exec.Command(os.Args[0], "-serve", "-mode", mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	var addr string
	if _, err := fmt.Fscanln(out, &addr); err != nil {
		return fmt.Errorf("server address: %w", err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	replies := make(chan uint64, 1)
	readErr := make(chan error, 1)
	if mode == "handoff" {
		go func() {
			var b [8]byte
			for {
				if _, err := io.ReadFull(r, b[:]); err != nil {
					readErr <- err
					return
				}
				replies <- binary.BigEndian.Uint64(b[:])
			}
		}()
	}
	var pr, pw *os.File
	if mode == "pipe" {
		if pr, pw, err = os.Pipe(); err != nil {
			return err
		}
		defer pr.Close()
		go func() {
			var b [8]byte
			for {
				if _, err := io.ReadFull(r, b[:]); err != nil {
					readErr <- err
					pw.Close() // the caller's read ends
					return
				}
				if _, err := pw.Write(b[:]); err != nil {
					readErr <- err
					return
				}
			}
		}()
	}
	var b [8]byte
	call := func(i uint64) error {
		binary.BigEndian.PutUint64(b[:], i)
		if _, err := c.Write(b[:]); err != nil {
			return err
		}
		var got uint64
		if mode == "pipe" {
			if _, err := io.ReadFull(pr, b[:]); err != nil {
				select {
				case rerr := <-readErr:
					return rerr
				default:
					return err
				}
			}
			got = binary.BigEndian.Uint64(b[:])
		} else if mode == "handoff" {
			select {
			case got = <-replies:
			case err := <-readErr:
				return err
			}
		} else {
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return err
			}
			got = binary.BigEndian.Uint64(b[:])
		}
		if got != i {
			return fmt.Errorf("reply %d to request %d", got, i)
		}
		return nil
	}
	for i := range 1000 {
		if err := call(uint64(i)); err != nil {
			return err
		}
	}
	start := time.Now()
	for i := range n {
		if err := call(uint64(i)); err != nil {
			return err
		}
	}
	el := time.Since(start)
	fmt.Printf("%s %.2f µs\n", mode, float64(el.Nanoseconds())/1000/float64(n))
	return nil
}
