package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

// httpError is an error the handlers raise themselves with a known status.
type httpError struct {
	status  int
	code    string
	msg     string
	details []string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, code: CodeBadRequest, msg: fmt.Sprintf(format, args...)}
}

// errShuttingDown answers requests that arrive while the server is stopping.
var errShuttingDown = &httpError{status: http.StatusServiceUnavailable, code: CodeUnavailable, msg: "server is shutting down"}

// classify is the one error → HTTP status mapping of the API. Every /v1 error response and
// every real status of a compat error (with --compat-http-status) comes from here.
func classify(err error) (status int, code string, details []string) {
	var (
		he  *httpError
		nf  *NotFoundError
		inv *InvalidError
		mbe *http.MaxBytesError
		de  descriptor.Errors
	)
	switch {
	case errors.As(err, &he):
		return he.status, he.code, he.details
	case errors.As(err, &inv):
		return http.StatusBadRequest, CodeInvalid, inv.Messages
	case errors.As(err, &de):
		return http.StatusBadRequest, CodeInvalid, descriptorMessages(de)
	case errors.As(err, &nf), errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, CodeNotFound, nil
	case errors.Is(err, ErrAlreadyAttached), errors.Is(err, ErrNotAttached), errors.Is(err, ErrDestroying):
		return http.StatusConflict, CodeConflict, nil
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, CodeTooLarge, nil
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, CodeTimeout, nil
	default:
		return http.StatusInternalServerError, CodeInternal, nil
	}
}

// writeV1Error writes the /v1 error envelope for err.
func (s *Server) writeV1Error(w http.ResponseWriter, r *http.Request, err error) {
	status, code, details := classify(err)
	if status >= 500 {
		s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, ErrorEnvelope{Error: ErrorBody{Code: code, Message: err.Error(), Details: details}})
}

// descriptorMessages turns descriptor errors into one "file:line:col: path: msg" line each.
func descriptorMessages(de descriptor.Errors) []string {
	out := make([]string, len(de))
	for i, e := range de {
		out[i] = e.Error()
	}
	return out
}

// problemLines returns the individual problems of an invalid-input error, or nil.
func problemLines(err error) []string {
	var (
		inv *InvalidError
		de  descriptor.Errors
	)
	switch {
	case errors.As(err, &inv):
		return inv.Messages
	case errors.As(err, &de):
		return descriptorMessages(de)
	}
	return nil
}
