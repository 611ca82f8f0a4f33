package autoscale

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// maxAlertBody bounds an alert request body; Alertmanager groups are small.
const maxAlertBody = 4 << 20

// ErrorWriter writes the API's JSON error envelope; the API server supplies its own so that
// every route answers errors the same way.
type ErrorWriter func(w http.ResponseWriter, status int, code, message string, details []string)

// DefaultErrorWriter writes {"error": {"code", "message", "details"}}.
func DefaultErrorWriter(w http.ResponseWriter, status int, code, message string, details []string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{"code": code, "message": message}
	if len(details) > 0 {
		body["details"] = details
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
}

// WebhookHandler serves POST /v1/alerts/alertmanager: Alertmanager's webhook (payload
// version 4). It answers 200 with what was accepted, resolved and refused; 400 when the body
// cannot be read as a webhook, and 422 when every alert in it was refused (so that nobody
// mistakes a misconfigured rule for a working one).
func (a *Autoscaler) WebhookHandler(writeErr ErrorWriter) http.Handler {
	return a.intake(writeErr, ParseWebhook)
}

// AlertsV2Handler serves POST /api/v2/alerts, the Alertmanager v2 API call a Prometheus makes
// when its alerting configuration points straight at skyfleet.
func (a *Autoscaler) AlertsV2Handler(writeErr ErrorWriter) http.Handler {
	return a.intake(writeErr, ParsePostableAlerts)
}

func (a *Autoscaler) intake(writeErr ErrorWriter, parse func([]byte, time.Time) ([]*Alert, []RejectedAlert, error)) http.Handler {
	if writeErr == nil {
		writeErr = DefaultErrorWriter
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAlertBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeErr(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("alert body over %d bytes", maxAlertBody), nil)
				return
			}
			writeErr(w, http.StatusBadRequest, "bad_request", "read body: "+err.Error(), nil)
			return
		}
		alerts, rejected, err := parse(body, a.now())
		if err != nil {
			a.log.Warn("alert delivery refused", "path", r.URL.Path, "err", err)
			writeErr(w, http.StatusBadRequest, "bad_alerts", err.Error(), nil)
			return
		}
		for _, rj := range rejected {
			a.log.Warn("alert refused", "path", r.URL.Path, "labels", rj.Labels, "reason", rj.Reason)
		}
		res := a.Receive(r.Context(), alerts)
		res.Rejected = append(rejected, res.Rejected...)
		if res.Accepted == 0 && res.Resolved == 0 && len(res.Rejected) > 0 {
			details := make([]string, len(res.Rejected))
			for i, rj := range res.Rejected {
				details[i] = fmt.Sprintf("%s: %s", labelString(rj.Labels), rj.Reason)
			}
			writeErr(w, http.StatusUnprocessableEntity, "bad_alerts", fmt.Sprintf("all %d alerts refused", len(res.Rejected)), details)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
}

func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, l[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// DecisionsHandler serves GET /v1/infrastructures/{id}/decisions[?after=SEQ&limit=N&node=NAME]
// from the store: the decision log, oldest first.
func DecisionsHandler(st store.Store, writeErr ErrorWriter) http.Handler {
	if writeErr == nil {
		writeErr = DefaultErrorWriter
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		after, err := parseUint(r.URL.Query().Get("after"))
		if err != nil {
			writeErr(w, http.StatusBadRequest, "bad_request", "after: "+err.Error(), nil)
			return
		}
		limit := 1000
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 10000 {
				writeErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("limit: %q is not an integer from 1 to 10000", s), nil)
				return
			}
			limit = n
		}
		node := r.URL.Query().Get("node")
		var out []*store.Decision
		err = st.View(r.Context(), func(tx store.Tx) error {
			if _, err := tx.Infra(id); err != nil {
				return err
			}
			ds, err := tx.Decisions(id, after, 0)
			if err != nil {
				return err
			}
			for _, d := range ds {
				if node == "" || d.Node == node {
					out = append(out, d)
				}
			}
			return nil
		})
		if errors.Is(err, store.ErrNotFound) {
			writeErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("infrastructure %q does not exist", id), nil)
			return
		}
		if err != nil {
			writeErr(w, http.StatusInternalServerError, "internal", err.Error(), nil)
			return
		}
		if len(out) > limit {
			out = out[len(out)-limit:]
		}
		if out == nil {
			out = []*store.Decision{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"decisions": out})
	})
}

// ActiveHandler serves GET /v1/alerts: the alerts currently considered firing.
func (a *Autoscaler) ActiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"alerts": a.Active()})
	})
}

func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a non-negative integer", s)
	}
	return n, nil
}
