// Command app is the test workload of the docker provider's integration tests: a static
// HTTP server, run in a FROM-scratch image, that answers /healthz and reports its
// environment and arguments so that tests can see what the provider passed in.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
)

func main() {
	addr := ":8080"
	for _, a := range os.Args[1:] {
		if v, ok := strings.CutPrefix(a, "--listen="); ok {
			addr = v
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, _ *http.Request) {
		host, _ := os.Hostname()
		_ = json.NewEncoder(w).Encode(map[string]any{"env": os.Environ(), "args": os.Args[1:], "hostname": host})
	})
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
