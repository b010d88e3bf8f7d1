package web_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/arsenal-go/arsenal/web"
)

func TestHandlerServesTheAssetsUnderUI(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		method, path string
		status       int
		contains     string
	}{
		{"GET", "/", 302, ""},
		{"GET", "/ui", 302, ""},
		{"GET", "/ui/", 200, `<script src="app.js" defer>`},
		{"GET", "/ui/app.js", 200, "function el("},
		{"GET", "/ui/style.css", 200, ":root"},
		{"GET", "/elsewhere", 404, ""},
		{"GET", "/ui/nothing.js", 404, ""},
		{"POST", "/ui/", 405, ""},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.contains) {
			t.Errorf("%s %s: %d, want %d with %q", c.method, c.path, resp.StatusCode, c.status, c.contains)
		}
		if c.status == 302 && resp.Header.Get("Location") != "/ui/" {
			t.Errorf("%s redirects to %q", c.path, resp.Header.Get("Location"))
		}
		if c.status == 200 && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: no content security policy", c.path)
		}
	}
}

// The front end builds the page from text, never from markup: no
// innerHTML, outerHTML, insertAdjacentHTML, document.write or eval, and
// nothing loaded from elsewhere.
func TestAssetsUseNoMarkupSinksAndNoRemoteFiles(t *testing.T) {
	sinks := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|https?://[a-z]`)
	err := fs.WalkDir(os.DirFS("assets"), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile("assets/" + path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			// The SVG namespace is a name, not a download.
			if m := sinks.FindString(line); m != "" && !strings.Contains(line, "http://www.w3.org/2000/svg") {
				t.Errorf("%s:%d: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
