// Package novatest is an in-process fake of the OpenStack APIs skyfleet's nova provider
// uses — Keystone v3 tokens (password and application-credential methods, with a service
// catalog), Nova servers and flavors, and Neutron networks, ports and floating IPs — served
// by net/http/httptest on a loopback address, so that the provider can be tested with the
// real gophercloud client and no cloud.
//
// It keeps everything in memory, checks tokens on every compute and network call, records
// the token request bodies (so tests can check what was sent), and injects the faults an
// orchestrator must survive: floating IP allocation or association failures, and a server
// create whose response is lost after the server was created.
//
// It is not a full OpenStack: servers change status only when a test says so (SetStatus),
// there is no scheduler, no volumes API (boot-from-volume requests are recorded as sent), no
// microversion negotiation and no pagination.
package novatest
