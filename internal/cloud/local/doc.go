// Package local is skyfleet's embedded default provider: every instance is a process group
// on this machine with its own loopback address (127.x.y.z, from 127.42.0.0/16 by default,
// never 127.0.0.1), its own working directory and log files under the data dir, and an
// optional CPU and memory limit through cgroup v2 where the machine allows it.
//
// Instances outlive the orchestrator: they run in their own process group, detached from
// it, and each one is recorded in DataDir/instances/<id>/instance.json with its pid and
// the process start time from /proc, so a restarted orchestrator can list and adopt them.
// Identity is always checked by pid AND start time (and, for stray group members, by the
// node id in their environment), never by pid alone, so a reused pid is never signalled.
//
// It is for running whole multi-node architectures on one Linux machine (examples, tests,
// development). It is not an isolation boundary: instances share the host's file system,
// users and network namespace; use the docker provider for that.
package local
