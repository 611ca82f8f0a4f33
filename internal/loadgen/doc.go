// Package loadgen is skyfleet's HTTP load generator (the `skyfleet load` verb): a bounded
// number of concurrent clients request one URL for a duration or a number of requests,
// read every body to the end and discard it, and the run reports a progress line each
// second, an optional per-second CSV timeline (with the ready instances per node of an
// infrastructure when asked) and a final summary with latency percentiles and errors by
// kind.
//
// Memory stays bounded whatever the run's length or the bodies' size: latencies go into
// fixed-size log-linear histograms, bodies through one buffer per client.
//
// It is not a benchmarking suite: one URL, one method, no request bodies, no rate control
// other than the concurrency.
package loadgen
