// Package cloud holds the provider contract that every cloud back end implements, the
// registry that maps a resource `type` (ec2, nova, docker, local, sim, …) to its driver, and
// the shared vocabulary of instance states and tags.
//
// It does not hold any provider itself: those live in sub-packages (cloud/local, cloud/sim,
// cloud/docker, cloud/ec2, cloud/nova) and are registered from main through an explicit
// Registry value, never through init side effects.
package cloud
