package transport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds or the deadline passes. Tests wait on
// conditions, never on fixed sleeps.
func waitFor(tb testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for: %s", timeout, fmt.Sprintf(format, args...))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuf is a concurrency-safe log sink for asserting on log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hasLine reports whether one log line contains every part.
func (l *logBuf) hasLine(parts ...string) bool {
	for _, line := range strings.Split(l.String(), "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// inbox collects the frames a link handler receives.
type inbox struct {
	mu     sync.Mutex
	frames [][]byte
	links  []*Link
}

func (in *inbox) handler(f []byte) {
	in.mu.Lock()
	in.frames = append(in.frames, f)
	in.mu.Unlock()
}

func (in *inbox) onLink(l *Link) {
	in.mu.Lock()
	in.links = append(in.links, l)
	in.mu.Unlock()
	l.SetHandler(in.handler)
}

func (in *inbox) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.frames)
}

func (in *inbox) get() [][]byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([][]byte(nil), in.frames...)
}

func (in *inbox) link(i int) *Link {
	in.mu.Lock()
	defer in.mu.Unlock()
	if i < len(in.links) {
		return in.links[i]
	}
	return nil
}

func (in *inbox) numLinks() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.links)
}

type node struct {
	*Network
	logs *logBuf
	in   *inbox
}

var testSecret = []byte("correct horse battery staple")

// startNode starts a Network on 127.0.0.1:0 that collects inbound and
// outbound frames into n.in. mutate adjusts the config.
func startNode(tb testing.TB, name string, mutate func(*Config)) *node {
	tb.Helper()
	logs := &logBuf{}
	in := &inbox{}
	cfg := Config{
		ClusterName:       "test",
		NodeName:          name + "@127.0.0.1",
		Incarnation:       uint64(time.Now().UnixNano()),
		Secret:            testSecret,
		BindAddr:          "127.0.0.1:0",
		HandshakeTimeout:  2 * time.Second,
		KeepaliveInterval: time.Second,
		Logger:            slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnLink:            in.onLink,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := Listen(cfg)
	if err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	tb.Cleanup(func() {
		n.Close()
		if tb.Failed() {
			tb.Logf("logs of %s:\n%s", name, logs.String())
		}
	})
	return &node{Network: n, logs: logs, in: in}
}

func dial(tb testing.TB, from, to *node) *Link {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := from.Dial(ctx, to.Addr())
	if err != nil {
		tb.Fatalf("Dial %s -> %s: %v", from.NodeName(), to.NodeName(), err)
	}
	return l
}

func dialErr(from, to *node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := from.Dial(ctx, to.Addr())
	if err == nil {
		l.Close()
	}
	return err
}

// writeTLSFiles writes a CA and a leaf certificate for 127.0.0.1 (client and
// server usage) signed by it, and returns the file paths.
func writeTLSFiles(tb testing.TB, dir, prefix string) (cert, key, ca string) {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: prefix + " test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "node"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		tb.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, prefix+"-"+name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	return write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "EC PRIVATE KEY", keyDER), write("ca.pem", "CERTIFICATE", caDER)
}
