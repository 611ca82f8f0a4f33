// Package sim is a simulated cloud: instances that exist only in memory, with a configurable
// boot time, failure rate, API error rate, lost-response rate and per-call latency, and
// addresses allocated from a documented range (127.77.0.0/16 by default).
//
// It exists so that the engine's fault, crash-recovery and scale tests and the benchmarks can
// drive thousands of instances deterministically (seeded randomness, injected clock) and
// inject faults on demand (Kill, SetState, FailNext, BlockNext). The addresses it hands out
// are labels, not reachable hosts: nothing listens on them, so health checks against sim
// nodes must be disabled or faked.
//
// It is not a mock of any particular cloud's API, and it is not meant for deploying real
// workloads: the local provider (package cloud/local) runs real processes.
package sim
