// Package dnsserver is skyfleet's authoritative DNS server for the zone "skyfleet.": clients
// find the ready instances of a node (a load-balancer cluster, say) by name, the way the seed
// architecture's clients used Consul's DNS interface.
//
// Names (matched case-insensitively; <infra> is an infrastructure's id or its infra_name):
//
//	skyfleet.                              SOA
//	<infra>.skyfleet.                      exists, holds no records (NOERROR, empty)
//	<node>.<infra>.skyfleet.               A and AAAA: one record per ready instance;
//	                                       SRV: one per ready instance, port from the node's
//	                                       variables, target <node_id>.<node>.<infra>.skyfleet.
//	<node_id>.<node>.<infra>.skyfleet.     A and AAAA of that instance while it is ready
//	_<service>._tcp.<node>.<infra>.skyfleet. (or _udp) the same SRV records, for resolvers
//	                                       that build RFC 2782 names; <service> is not looked at
//
// Only ready instances are published: pending, draining and failed instances are out of
// every answer. An instance's A record is its first IPv4 address, most public first (the
// registry's primary address when that is IPv4), its AAAA record its first IPv6 address;
// an instance with neither is left out of every answer. The SRV port is the first of the
// node's variables port, app_port and applicationport that holds a valid port (node
// variables are merged over the infrastructure's), else 80.
//
// Infrastructure names are not unique: when several infrastructures share a name, the name
// resolves to the most recently created one (of two created at the same instant, the one with
// the greater id); the id form always reaches exactly one. An id always wins over a name equal
// to it. A name that is not a single DNS label (empty, or holding a dot) is reachable by id
// only.
//
// Answers: NXDOMAIN with the zone's SOA in the authority section for a name that does not
// exist; NOERROR with no answer and the SOA in the authority section (NODATA) for a name
// that exists without records of the asked type; REFUSED for a name outside the zone;
// SERVFAIL until the first read of the store completed. Every record carries the same short
// TTL (Options.TTL, 5 s by default), which is also the SOA's negative-caching TTL. UDP
// answers that do not fit the client's buffer (512 bytes, or its EDNS0 size) are truncated
// with the TC bit set, and the client retries over TCP; the server listens on both.
//
// Answers come from an in-memory copy kept current from the events hub (package readyset):
// a query never reads the store. The package does not decide membership (the engine does)
// and does not recurse or forward: it answers for its zone only.
package dnsserver
