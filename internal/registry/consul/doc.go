// Package consul keeps a Consul agent's service catalog in step with skyfleet's ready
// instances, for setups that still find their peers through Consul as the seed architecture
// did (consul-template feeding haproxy, Prometheus' consul_sd_configs, Consul DNS).
//
// Each ready instance is registered with the agent at Options.Address as:
//
//	ID       skyfleet-<node_id>
//	Name     <node>_cluster                 (the seed's service names: lb_cluster, da_cluster)
//	Address  the instance's primary address (as in the registry's endpoints)
//	Port     the node's variable consul_port, else metrics_port, else 9100
//	Tags     skyfleet, infra:<infra_id>, node:<node>
//	Meta     infra_id, node, node_id, infra_name (when set), app_port (when the node's
//	         port, app_port or applicationport variable is set: the port the DNS SRV records
//	         carry), skyfleet_check (the check kind, so a change of kind re-registers)
//	Check    TCP connect to Address:Port every 10s with a 5s timeout (Options.Check "tcp",
//	         the default), or none (Options.Check "none")
//
// The service port is the metrics port, not the application's, because that is what the
// seed registered (node_exporter's 9100) and what its Prometheus scraped through
// consul_sd_configs; consul-template users read the application port from the app_port meta
// field. The TCP check runs on the agent skyfleet talks to, so that agent must reach the
// instances; "none" suits nodes that expose no metrics port.
//
// An instance is deregistered as soon as it leaves the ready set: when it starts draining,
// fails, is dropped, or its infrastructure is deleted. The sync is level-triggered: at start,
// after any failed call, and every Options.Resync it lists the agent's services, removes the
// skyfleet ones (ID prefix skyfleet- and tag skyfleet) that no ready instance claims, and
// registers the missing or different ones; in between it applies the changes it sees in the
// ready set (package readyset, kept current from the events hub). Services that skyfleet did
// not register are never touched. A failed call is logged and retried with exponential
// backoff (Options.MinBackoff doubling up to Options.MaxBackoff); it never ends Run.
//
// Registrations go through the agent API (the service lives on skyfleet's local agent, with
// the instance's address), which is how a single orchestrator can publish instances that run
// no agent of their own. The token is sent in the X-Consul-Token header and never logged.
// The package does not read from Consul to decide anything: skyfleet's store stays the source
// of truth.
package consul
