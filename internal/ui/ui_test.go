package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerServesFiles(t *testing.T) {
	h := Handler()
	tests := []struct {
		path      string
		ctype     string
		bodyHas   string
		wantCode  int
		wantEmpty bool
	}{
		{path: "/ui/", ctype: "text/html; charset=utf-8", bodyHas: `<html lang="en">`, wantCode: 200},
		{path: "/ui/index.html", ctype: "text/html; charset=utf-8", bodyHas: `<script type="module" src="js/main.js">`, wantCode: 200},
		{path: "/ui/js/main.js", ctype: "text/javascript; charset=utf-8", bodyHas: "import ", wantCode: 200},
		{path: "/ui/js/sse.js", ctype: "text/javascript; charset=utf-8", bodyHas: "export class SSEParser", wantCode: 200},
		{path: "/ui/css/app.css", ctype: "text/css; charset=utf-8", bodyHas: "--tap: 44px", wantCode: 200},
		{path: "/ui/favicon.svg", ctype: "image/svg+xml", bodyHas: "<svg", wantCode: 200},
		{path: "/ui/missing.js", wantCode: 404},
		{path: "/ui/js/", wantCode: 404},
		{path: "/elsewhere", wantCode: 404},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := get(t, h, http.MethodGet, tc.path, nil)
			if rec.Code != tc.wantCode {
				t.Fatalf("GET %s: status %d, want %d; body %q", tc.path, rec.Code, tc.wantCode, rec.Body.String())
			}
			hd := rec.Header()
			if got := hd.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy = %q, want %q", got, ContentSecurityPolicy)
			}
			if got := hd.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if got := hd.Get("X-Frame-Options"); got != "DENY" {
				t.Errorf("X-Frame-Options = %q, want DENY", got)
			}
			if tc.wantCode != 200 {
				return
			}
			if got := hd.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type = %q, want %q", got, tc.ctype)
			}
			if hd.Get("ETag") == "" {
				t.Error("no ETag: browsers could not revalidate")
			}
			if got := hd.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			if !strings.Contains(rec.Body.String(), tc.bodyHas) {
				t.Errorf("body of %s lacks %q", tc.path, tc.bodyHas)
			}
		})
	}
}

func TestHandlerRedirectsMethodsAndRevalidation(t *testing.T) {
	h := Handler()
	t.Run("redirect", func(t *testing.T) {
		for path, want := range map[string]string{"/ui": "/ui/", "/ui?x=1": "/ui/?x=1"} {
			rec := get(t, h, http.MethodGet, path, nil)
			if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != want {
				t.Errorf("GET %s: %d Location %q, want 301 to %s", path, rec.Code, rec.Header().Get("Location"), want)
			}
		}
	})
	t.Run("method", func(t *testing.T) {
		rec := get(t, h, http.MethodPost, "/ui/", nil)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("POST /ui/: %d Allow %q, want 405 with Allow: GET, HEAD", rec.Code, rec.Header().Get("Allow"))
		}
	})
	t.Run("head", func(t *testing.T) {
		rec := get(t, h, http.MethodHead, "/ui/js/api.js", nil)
		if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("HEAD: %d, %d body bytes, type %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Type"))
		}
	})
	t.Run("etag", func(t *testing.T) {
		first := get(t, h, http.MethodGet, "/ui/css/app.css", nil)
		again := get(t, h, http.MethodGet, "/ui/css/app.css", map[string]string{"If-None-Match": first.Header().Get("ETag")})
		if again.Code != http.StatusNotModified {
			t.Errorf("revalidation with the ETag: %d, want 304", again.Code)
		}
	})
}

// TestIndexReferencesExist checks that every file index.html and the modules refer to is
// embedded, so that a renamed file cannot leave the page broken.
func TestIndexReferencesExist(t *testing.T) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	index, err := fs.ReadFile(root, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	attr := regexp.MustCompile(`(?:src|href)="([^"#:]+)"`)
	refs := attr.FindAllStringSubmatch(string(index), -1)
	if len(refs) < 3 {
		t.Fatalf("index.html references %d files; the pattern is broken", len(refs))
	}
	for _, m := range refs {
		if _, err := fs.Stat(root, m[1]); err != nil {
			t.Errorf("index.html refers to %s, which is not embedded", m[1])
		}
	}
	imp := regexp.MustCompile(`(?m)^import .* from '\./([^']+)';|^import \* as \w+ from '\./([^']+)';`)
	jsFiles, err := fs.Glob(root, "js/*.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range jsFiles {
		src, err := fs.ReadFile(root, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range imp.FindAllStringSubmatch(string(src), -1) {
			name := m[1] + m[2]
			if _, err := fs.Stat(root, "js/"+name); err != nil {
				t.Errorf("%s imports ./%s, which is not embedded", f, name)
			}
		}
	}
}

// TestNoInlineCode checks the page works under its own policy: no inline script, no inline
// event handler, no style attribute, nothing from another origin.
func TestNoInlineCode(t *testing.T) {
	root, _ := fs.Sub(static, "static")
	htmlRules := []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // script with content
		regexp.MustCompile(`\son[a-z]+\s*=`),                // onclick= …
		regexp.MustCompile(`\sstyle\s*=`),                   // style attribute
		regexp.MustCompile(`<style`),                        // style element
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),  // another origin
	}
	jsRules := []*regexp.Regexp{
		regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`),
		regexp.MustCompile(`setAttribute\('style'|'style':|\bstyle: `), // style attributes from script
		regexp.MustCompile(`https?://`),                                // another origin
	}
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(p, ".html") && !strings.HasSuffix(p, ".js")) {
			return err
		}
		src, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		rules := htmlRules
		if strings.HasSuffix(p, ".js") {
			rules = jsRules
			// The SVG namespace is a name, not a place the page loads from.
			src = []byte(strings.ReplaceAll(string(src), "http://www.w3.org/2000/svg", "svg-namespace"))
		}
		for _, re := range rules {
			if loc := re.FindIndex(src); loc != nil {
				t.Errorf("%s: %q breaks the content security policy or the no-markup rule", p, src[loc[0]:loc[1]])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewHandlerRefusesUnknownTypesAndMissingIndex(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"unknown extension", fstest.MapFS{"static/index.html": {Data: []byte("x")}, "static/a.wasm": {Data: []byte("x")}}, `extension ".wasm" has no content type`},
		{"no index", fstest.MapFS{"static/app.js": {Data: []byte("x")}}, "index.html is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newHandler(tc.fs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newHandler: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
