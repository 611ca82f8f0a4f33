// Package e2e holds the end-to-end tests of skyfleet's main job: the seed's scalable
// architecture (examples/autoscaling and examples/autoscaling-docker) brought up with
// `skyfleet up`, loaded with `skyfleet load` until the application cluster scales out, and
// left idle until it scales back in, with no failed client request throughout.
//
// The tests build the skyfleet binary with `go build` into a temporary directory and run it
// as a subprocess, exactly as a user would. They need PostgreSQL and, per variant, haproxy,
// Prometheus with Alertmanager, or a Docker engine; a variant whose programs are missing is
// skipped unless SKYFLEET_REQUIRE_INTEGRATION is set. Each variant is bounded to a few
// minutes. Each run uses a copy of the example whose local instances get their own loopback
// /24, so that another skyfleet on the machine cannot take their addresses. The load
// timeline, the decision log, up's output and the server's log of each run are kept in
// $SKYFLEET_ARTIFACTS_DIR (else in the test's temporary directory, whose path is logged).
//
// The package holds no production code; it is not for unit tests of single packages.
package e2e
