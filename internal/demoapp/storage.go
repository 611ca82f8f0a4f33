package demoapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// copyBufferSize is the size of the fixed buffers that Storage and App stream through.
const copyBufferSize = 64 << 10

// bufPool holds the streaming buffers, so that a streamed byte costs no allocation.
var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// Storage serves deterministic objects over HTTP:
//
//	GET|HEAD /objects/{name}?size=1G   the object (default size 1 GiB), Range supported
//	GET      /healthz                  200
//
// Each response costs one 64 KiB buffer whatever the object's size.
type Storage struct {
	// Logger receives one line per failed request; nil discards.
	Logger *slog.Logger
}

// Handler returns the storage routes.
func (s *Storage) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /objects/{name}", s.serveObject)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// Serve answers on ln until ctx ends, then shuts down, giving open responses up to grace.
func (s *Storage) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	return serveHTTP(ctx, ln, s.Handler(), grace)
}

func (s *Storage) serveObject(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	size := DefaultObjectSize
	if q := r.URL.Query().Get("size"); q != "" {
		n, err := ParseSize(q)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		size = n
	}
	obj := NewObject(name, size)
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", "application/octet-stream")
	// The content is a function of name and offset only, so name plus size identify it.
	h.Set("ETag", strconv.Quote(fmt.Sprintf("%016x-%d", obj.seed, size)))

	rng, partial, err := parseRange(r.Header.Get("Range"), size)
	if ir := r.Header.Get("If-Range"); ir != "" && ir != h.Get("ETag") {
		partial, err = false, nil // the client's copy is another object: send all of this one
	}
	if errors.Is(err, errUnsatisfiable) {
		h.Del("Content-Type")
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		writeError(w, http.StatusRequestedRangeNotSatisfiable,
			fmt.Sprintf("range %q does not overlap the object's %d bytes", r.Header.Get("Range"), size))
		return
	}
	status := http.StatusOK
	start, length := int64(0), size
	if partial {
		status = http.StatusPartialContent
		start, length = rng.start, rng.length
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, size))
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for off, end := start, start+length; off < end; {
		n := int(min(int64(len(buf)), end-off))
		obj.fill(buf[:n], off)
		if _, err := w.Write(buf[:n]); err != nil {
			if s.Logger != nil {
				s.Logger.Debug("object response ended early", "object", name, "offset", off, "err", err)
			}
			return
		}
		off += int64(n)
	}
}

// errorBody is the JSON body of every error answer of the demo roles.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// serveHTTP runs an HTTP server on ln until ctx ends, then shuts it down within grace.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
	}
	if serr := <-errc; err == nil && serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down http server on %s: %w", ln.Addr(), err)
	}
	return nil
}
