package autoscale

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHTTPQuerier checks the client against answers shaped as Prometheus' /api/v1/query gives
// them.
func TestHTTPQuerier(t *testing.T) {
	answers := map[string]string{
		"one":    `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1764396000,"73.5"]}]}}`,
		"scalar": `{"status":"success","data":{"resultType":"scalar","result":[1764396000,"2"]}}`,
		"none":   `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		"many":   `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1764396000,"1"]},{"metric":{"a":"2"},"value":[1764396000,"2"]}]}}`,
		"bad":    `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.Form.Get("query") == "bad" {
			w.WriteHeader(http.StatusBadRequest)
		}
		_, _ = w.Write([]byte(answers[r.Form.Get("query")]))
	}))
	defer srv.Close()
	q := &HTTPQuerier{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tests := []struct {
		query   string
		want    float64
		wantErr string
	}{
		{"one", 73.5, ""},
		{"scalar", 2, ""},
		{"none", 0, "query returned no data"},
		{"many", 0, "query returned 2 series; want one (aggregate it, e.g. avg(...))"},
		{"bad", 0, "parse error"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			v, err := q.Query(ctx, srv.URL, tt.query, time.Now())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || v != tt.want {
				t.Fatalf("Query = %v, %v; want %v", v, err, tt.want)
			}
		})
	}
}
