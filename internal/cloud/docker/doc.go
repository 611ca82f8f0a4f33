// Package docker is the `docker` cloud provider: each node instance is a container on a
// Docker engine, reached through the Engine API (unix socket or plain tcp; TLS is not
// supported, as in Occopus). It accepts Occopus' docker resource keys (type, endpoint,
// origin, image, tag, name) plus network, cpus and memory, and Occopus' `docker`
// contextualisation (env, command).
//
// Every container sits on a user-defined bridge network (by default skyfleet-<first 8 of the
// infrastructure id>, created on demand with a /24 from DefaultSubnetPool) and its address
// on that network is the node's address for health checks, templates (getip) and the
// registry; the node name is a DNS alias on the network. Containers carry skyfleet's tags as
// labels, so List finds them again after a restart and Create is idempotent on the node id.
//
// It is not a general Docker client: no volumes, published ports, registries with
// credentials or TLS. Containers are reached on their own address, so no port is published
// on the host.
package docker
