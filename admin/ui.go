package admin

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// The status page: static HTML, CSS and a script, embedded in the binary.
// They hold no data, so they are served without a token; the script reads
// the API with the token the user gives in the URL fragment
// (/ui/#token=...) or in its form.
//
//go:embed ui
var uiFiles embed.FS

// uiCSP lets the page load its own script and style and talk to its own
// origin only, and keeps it out of frames.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// uiRoutes serves the status page under /ui/.
func (s *Server) uiRoutes(mux *http.ServeMux) {
	files, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui
	}
	static := http.FileServerFS(files)
	mux.Handle("GET /ui/", http.StripPrefix("/ui", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if p := path.Clean(r.URL.Path); p != "/" && !strings.Contains(p, ".") {
			http.NotFound(w, r)
			return
		}
		static.ServeHTTP(w, r)
	})))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
}
