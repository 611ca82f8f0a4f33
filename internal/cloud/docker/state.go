package docker

import (
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// stateOf maps a container's state to a provider state, following Occopus' docker plugin:
//
//	running (not paused)                  → running   (Occopus: ready, after health checks)
//	restarting                            → pending
//	created, never started                → pending   (Occopus: None, i.e. pending)
//	paused                                → stopped   (kept as temp_failed)
//	exited with ExitCode -1               → stopped   (Occopus: temp_failed)
//	exited otherwise, dead                → failed    (Occopus: shutdown; see below)
//	removing                              → gone
//
// Occopus calls a stopped container "shutdown", after which it replaces the node. skyfleet
// reports it as failed rather than gone, because the container still exists: the engine
// then replaces it and destroys (removes) the old container, including when it finds it only
// by listing labels, while a "gone" instance is assumed to need no clean-up.
func stateOf(s *container.State) (cloud.State, string) {
	if s == nil {
		return cloud.StateGone, ""
	}
	switch {
	case s.Running && s.Paused:
		return cloud.StateStopped, "paused"
	case s.Restarting:
		return cloud.StatePending, "restarting"
	case s.Running:
		return cloud.StateRunning, ""
	}
	switch s.Status {
	case container.StateCreated:
		return cloud.StatePending, "created, not started yet"
	case container.StateRemoving:
		return cloud.StateGone, "being removed"
	case container.StateDead:
		return cloud.StateFailed, "dead" + errorSuffix(s.Error)
	}
	if s.ExitCode == -1 {
		return cloud.StateStopped, "exited with code -1" + errorSuffix(s.Error)
	}
	detail := fmt.Sprintf("exited with code %d", s.ExitCode)
	if s.OOMKilled {
		detail += " (killed: out of memory)"
	}
	return cloud.StateFailed, detail + errorSuffix(s.Error)
}

func errorSuffix(e string) string {
	e = strings.TrimSpace(e)
	if e == "" {
		return ""
	}
	return ": " + e
}
