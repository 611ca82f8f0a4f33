// Package ui serves skyfleet's web dashboard: static HTML, CSS and JavaScript modules,
// embedded in the binary and written by hand (no build step, nothing fetched from another
// origin). The page shows the infrastructures, each one's nodes, instances, scaling timeline
// and decision log, and scales or destroys through the same /v1 API and bearer token as the
// CLI.
//
// The package holds no data and calls nothing: every figure on the page comes from the
// browser's own requests to the API, which enforces authentication. The static files are
// public (they carry no secrets), so the caller mounts Handler outside the API's token check.
// It is not an API server, and it does not render pages on the server.
package ui
