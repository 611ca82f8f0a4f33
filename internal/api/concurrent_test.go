package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentRequests runs reports, scaling and submissions at once (meant for -race): every
// request must succeed and the final target must account for every accepted scale-up.
func TestConcurrentRequests(t *testing.T) {
	h := newHarness(t, nil)
	id := h.createInfra()
	h.seedInstances(id)
	infra := readFixture(t, "infra.yaml")
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var req *http.Request
				switch (w + i) % 5 {
				case 0:
					req, _ = http.NewRequest("GET", h.ts.URL+"/infrastructures/"+id, nil)
				case 1:
					req, _ = http.NewRequest("GET", h.ts.URL+"/v1/infrastructures/"+id, nil)
				case 2:
					req, _ = http.NewRequest("POST", h.ts.URL+"/infrastructures/"+id+"/scaleup/lb", nil)
				case 3:
					req, _ = http.NewRequest("POST", h.ts.URL+"/infrastructures/", strings.NewReader(infra))
				case 4:
					req, _ = http.NewRequest("GET", h.ts.URL+"/v1/infrastructures", nil)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || strings.Contains(string(body), "status_code") {
					errs <- fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	resp, body := h.do("GET", "/infrastructures/"+id, "")
	mustStatus(t, resp, body, 200)
	var rep map[string]compatNode
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if got := rep["lb"].Scaling.Target; got != 3 {
		t.Errorf("lb target = %d after many scale-ups, want max 3", got)
	}
}
