package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the URL path the dashboard is served under.
const Prefix = "/ui/"

// ContentSecurityPolicy is sent with every file: scripts, styles, images and connections come
// from the serving origin only, no inline script or style element runs, and no other site may
// frame the page.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

// contentTypes maps the extensions of the embedded files to their media types. The table is
// explicit rather than read from the host's MIME database, whose answers vary between systems
// (a module script served with the wrong type is refused by the browser).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// file is one embedded file, ready to serve.
type file struct {
	name  string
	data  []byte
	ctype string
	etag  string
}

// handler serves the embedded files.
type handler struct {
	files map[string]*file // by path below Prefix, "" being index.html
}

// Handler returns the dashboard's handler. It expects the full request path: it serves
// /ui/ (index.html) and every file below /ui/, redirects /ui to /ui/, and answers 404 for
// anything else. Mount it on the server's mux for both patterns:
//
//	mux.Handle("GET /ui/", ui.Handler())
//	mux.Handle("GET /ui", ui.Handler())
//
// Only GET and HEAD are served. Every answer carries the security headers (see
// ContentSecurityPolicy); files are revalidated by ETag, so a new binary's files are
// picked up at once.
func Handler() http.Handler {
	h, err := newHandler(static)
	if err != nil {
		// The embedded tree is fixed at build time and checked by the package tests, so a
		// failure here cannot happen in a built binary; answer 500 rather than panic.
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "dashboard files unavailable: "+err.Error(), http.StatusInternalServerError)
		})
	}
	return h
}

// newHandler reads every file below static/ into memory with its type and ETag.
func newHandler(fsys fs.FS) (*handler, error) {
	root, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, fmt.Errorf("open dashboard files: %w", err)
	}
	h := &handler{files: map[string]*file{}}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("dashboard file %s: extension %q has no content type (known: .html, .js, .css, .svg, .png, .ico)", p, path.Ext(p))
		}
		data, err := fs.ReadFile(root, p)
		if err != nil {
			return fmt.Errorf("read dashboard file: %w", err)
		}
		sum := sha256.Sum256(data)
		h.files[p] = &file{name: p, data: data, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	idx, ok := h.files["index.html"]
	if !ok {
		return nil, fmt.Errorf("dashboard files: index.html is missing")
	}
	h.files[""] = idx
	return h, nil
}

// setSecurityHeaders adds the headers every answer carries, errors included.
func setSecurityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method "+r.Method+" not allowed: the dashboard serves GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == strings.TrimSuffix(Prefix, "/") {
		target := Prefix
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	rel, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, ok := h.files[rel]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	// no-cache means "revalidate before use": with the ETag that costs a 304, and a
	// dashboard served by a newer binary is never mixed with cached modules of an older one.
	hd.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
}
