package ops

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

// MinTokenLength is the shortest token LoadTokens accepts: a token is a
// password that anyone who can reach the port may try to guess.
const MinTokenLength = 16

// LoadTokens reads a token file: one "TOKEN ROLE NAME" per line, where
// ROLE is viewer or operator and NAME (the rest of the line) is who the
// token belongs to, as the audit log shows it. Blank lines and lines that
// start with # are ignored. Errors name the line, never the token.
func LoadTokens(path string) (map[string]Principal, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	toks, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return toks, nil
}

// ParseTokens reads tokens in the format of LoadTokens, for tokens that
// come from somewhere other than a file (an environment variable).
func ParseTokens(rd io.Reader) (map[string]Principal, error) {
	out := map[string]Principal{}
	lineOf := map[string]int{}
	sc := bufio.NewScanner(rd)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("line %d: want TOKEN ROLE NAME", n)
		}
		tok, role := f[0], Role(f[1])
		if role != RoleViewer && role != RoleOperator {
			return nil, fmt.Errorf("line %d: role %q is not viewer or operator", n, f[1])
		}
		if len(tok) < MinTokenLength {
			return nil, fmt.Errorf("line %d: the token is shorter than %d characters", n, MinTokenLength)
		}
		if first, dup := lineOf[tok]; dup {
			return nil, fmt.Errorf("line %d: the same token as line %d", n, first)
		}
		lineOf[tok] = n
		name := strings.Join(f[2:], " ")
		out[tok] = Principal{Name: name, Role: role}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// DefaultOpenReads reports whether reads should be open (need no token)
// by default for a server listening on httpAddr: only when it listens on
// loopback, where only local users can reach it. An address without a host
// (":8080") listens on every interface, so it is not loopback.
func DefaultOpenReads(httpAddr string) bool {
	host := httpAddr
	if h, _, err := net.SplitHostPort(httpAddr); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokenTable looks tokens up by their SHA-256, so the lookup time does not
// depend on how much of a guessed token is right.
type tokenTable map[[32]byte]Principal

func newTokenTable(toks map[string]Principal) tokenTable {
	t := make(tokenTable, len(toks))
	for tok, p := range toks {
		t[sha256.Sum256([]byte(tok))] = p
	}
	return t
}

// authenticate returns the caller of r, or an Error: 401 for a missing or
// unknown token, 403 for a role below min. A request with a token is
// always checked, even for an open read, so a bad token never goes
// unnoticed.
func (t tokenTable) authenticate(r *http.Request, min Role, open bool) (Principal, *Error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if open {
			return Anonymous, nil
		}
		return Principal{}, NewError(http.StatusUnauthorized, "unauthorized", "this operation needs a bearer token (Authorization: Bearer TOKEN)")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return Principal{}, NewError(http.StatusUnauthorized, "unauthorized", "the Authorization header must be \"Bearer TOKEN\"")
	}
	p, found := t[sha256.Sum256([]byte(strings.TrimSpace(tok)))]
	if !found {
		return Principal{}, NewError(http.StatusUnauthorized, "unauthorized", "unknown token")
	}
	if !p.Role.Allows(min) {
		return p, NewError(http.StatusForbidden, "forbidden", fmt.Sprintf("%s has role %s; this operation needs %s", p.Name, p.Role, min))
	}
	return p, nil
}
