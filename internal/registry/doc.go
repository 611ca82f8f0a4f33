// Package registry publishes the ready instances of each node to the parties that route or
// scrape traffic: the endpoints API and its server-sent event watch stream (load balancers),
// Prometheus HTTP service discovery, and the load balancers' connection reports that the
// engine consults before it destroys a draining instance.
//
// Every view is computed from the store; the events hub only tells the registry when to look
// again, and a periodic resync catches anything the hub did not deliver. Only instances in
// state ready are published: pending, draining and failed instances are out of every view.
//
// The package does not decide membership (the engine does) and does not listen on sockets:
// it provides http.Handlers that the API server mounts.
package registry
