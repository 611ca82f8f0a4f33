// Package nova is the `nova` cloud provider: each node instance is an OpenStack Nova
// server, created through gophercloud v2 after Keystone v3 authentication (password with a
// project scope, or an application credential). It accepts Occopus' nova resource keys
// (type, endpoint, image_id, flavor_name, project_id, server_name, key_name,
// security_groups, network_id, floating_ip, floating_ip_pool, region_name,
// user_domain_name, volume_size, volume_persist, name, tenant_name).
//
// Servers carry skyfleet's tags as metadata, which makes Create idempotent on the node id (a
// server with the node id is looked up before one is created, also after a lost response)
// and lets List find them for adoption. When floating_ip is set, a floating IP is allocated
// from the pool through Neutron and associated once the server is ACTIVE, retried with
// backoff up to a bound, and released when the server is destroyed.
//
// It is not a general OpenStack client: no volumes API (a boot volume lives and dies with
// its server through delete_on_termination), no server groups, no ports of its own, no
// Keystone v2. Package novatest fakes Keystone, Nova and Neutron for tests.
package nova
