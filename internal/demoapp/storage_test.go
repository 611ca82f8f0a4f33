package demoapp

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// objectBytes returns the expected bytes [off, off+n) of object name.
func objectBytes(name string, size, off, n int64) []byte {
	b := make([]byte, n)
	_, _ = NewObject(name, size).ReadAt(b, off)
	return b
}

func TestStorageServesObjects(t *testing.T) {
	srv := httptest.NewServer((&Storage{}).Handler())
	defer srv.Close()
	const size = 3<<20 + 5 // not a multiple of the buffer or of 8
	for _, tc := range []struct {
		name          string
		method        string
		query         string
		rangeH        string
		ifRange       string
		wantStatus    int
		wantLen       int64
		wantOff       int64
		wantCR        string
		wantBody      bool
		wantErrorJSON bool
	}{
		{name: "whole", method: "GET", query: "?size=3145733", wantStatus: 200, wantLen: size, wantBody: true},
		{name: "suffix sizes", method: "GET", query: "?size=1M", wantStatus: 200, wantLen: 1 << 20, wantBody: true},
		{name: "head", method: "HEAD", query: "?size=3145733", wantStatus: 200, wantLen: size},
		{name: "range", method: "GET", query: "?size=3145733", rangeH: "bytes=1000-70999", wantStatus: 206, wantLen: 70000, wantOff: 1000, wantCR: "bytes 1000-70999/3145733", wantBody: true},
		{name: "open range", method: "GET", query: "?size=3145733", rangeH: "bytes=3145700-", wantStatus: 206, wantLen: 33, wantOff: 3145700, wantCR: "bytes 3145700-3145732/3145733", wantBody: true},
		{name: "suffix range", method: "GET", query: "?size=3145733", rangeH: "bytes=-7", wantStatus: 206, wantLen: 7, wantOff: size - 7, wantCR: "bytes 3145726-3145732/3145733", wantBody: true},
		{name: "head range", method: "HEAD", query: "?size=3145733", rangeH: "bytes=0-9", wantStatus: 206, wantLen: 10, wantCR: "bytes 0-9/3145733"},
		{name: "unsatisfiable", method: "GET", query: "?size=3145733", rangeH: "bytes=3145733-", wantStatus: 416, wantCR: "bytes */3145733", wantErrorJSON: true},
		{name: "multiple ranges served whole", method: "GET", query: "?size=1K", rangeH: "bytes=0-1,4-5", wantStatus: 200, wantLen: 1024, wantBody: true},
		{name: "if-range mismatch serves whole", method: "GET", query: "?size=1K", rangeH: "bytes=0-1", ifRange: `"other"`, wantStatus: 200, wantLen: 1024, wantBody: true},
		{name: "bad size", method: "GET", query: "?size=lots", wantStatus: 400, wantErrorJSON: true},
		{name: "too big", method: "GET", query: "?size=2T", wantStatus: 400, wantErrorJSON: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+"/objects/"+tc.name+tc.query, nil)
			if tc.rangeH != "" {
				req.Header.Set("Range", tc.rangeH)
			}
			if tc.ifRange != "" {
				req.Header.Set("If-Range", tc.ifRange)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.wantStatus, body)
			}
			if got := resp.Header.Get("Content-Range"); got != tc.wantCR {
				t.Errorf("Content-Range %q, want %q", got, tc.wantCR)
			}
			if tc.wantErrorJSON {
				if !bytes.Contains(body, []byte(`"error"`)) {
					t.Errorf("body %q is not a JSON error", body)
				}
				return
			}
			if resp.ContentLength != tc.wantLen {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, tc.wantLen)
			}
			if resp.Header.Get("Accept-Ranges") != "bytes" {
				t.Errorf("Accept-Ranges %q, want bytes", resp.Header.Get("Accept-Ranges"))
			}
			if !tc.wantBody {
				if len(body) != 0 {
					t.Errorf("HEAD answered %d body bytes", len(body))
				}
				return
			}
			sz, _ := ParseSize(tc.query[len("?size="):])
			if want := objectBytes(tc.name, sz, tc.wantOff, tc.wantLen); !bytes.Equal(body, want) {
				t.Errorf("body differs from the object's bytes %d..%d", tc.wantOff, tc.wantOff+tc.wantLen)
			}
		})
	}
}

func TestStorageIfRangeMatchKeepsRange(t *testing.T) {
	srv := httptest.NewServer((&Storage{}).Handler())
	defer srv.Close()
	head, err := srv.Client().Head(srv.URL + "/objects/a?size=1K")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	etag := head.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ := http.NewRequest("GET", srv.URL+"/objects/a?size=1K", nil)
	req.Header.Set("Range", "bytes=10-19")
	req.Header.Set("If-Range", etag)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 206 || !bytes.Equal(body, objectBytes("a", 1024, 10, 10)) {
		t.Fatalf("If-Range with the current ETag: status %d, %d bytes; want 206 with bytes 10..19", resp.StatusCode, len(body))
	}
}

func TestStorageDefaultSizeIsOneGiB(t *testing.T) {
	srv := httptest.NewServer((&Storage{}).Handler())
	defer srv.Close()
	resp, err := srv.Client().Head(srv.URL + "/objects/big")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != 1<<30 {
		t.Fatalf("Content-Length %d, want %d", resp.ContentLength, 1<<30)
	}
}

// discardResponse is an http.ResponseWriter that drops the body.
type discardResponse struct{ h http.Header }

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(int)             {}

// BenchmarkStorageObject measures generating and writing a 64 MiB object; its allocations
// per operation show that the cost in memory does not grow with the object.
func BenchmarkStorageObject(b *testing.B) {
	h := (&Storage{}).Handler()
	req := httptest.NewRequest("GET", "/objects/bench?size=64M", nil)
	b.SetBytes(64 << 20)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discardResponse{h: http.Header{}}, req)
	}
}
