// Package web is the dashboard every node serves at /ui/: plain HTML, CSS
// and JavaScript embedded in the binary (no CDN, no build step), reading
// the operations API of the node that serves it. See docs/DASHBOARD.md.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the dashboard's assets under /ui/ and redirects / to
// /ui/. Mount it for "/" (it answers 404 for any other path) or for
// "/ui/" alone.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch {
		case r.URL.Path == "/" || r.URL.Path == "/ui":
			http.Redirect(w, r, "/ui/", http.StatusFound)
			return
		case len(r.URL.Path) < 4 || r.URL.Path[:4] != "/ui/":
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		// The page loads only its own files and talks only to its own node.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
