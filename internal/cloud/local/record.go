package local

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// recordVersion is the schema version of instance.json.
const recordVersion = 1

// record is the content of DataDir/instances/<id>/instance.json: everything needed to find
// the instance's process again after the orchestrator restarts, and to prove that a pid
// still names that process.
type record struct {
	Version   int    `json:"version"`
	ID        string `json:"id"`
	Token     string `json:"token"`
	InfraID   string `json:"infra_id,omitempty"`
	InfraName string `json:"infra_name,omitempty"`
	Node      string `json:"node,omitempty"`
	// PID is the process (and process group) id; 0 until the process has started.
	PID int `json:"pid"`
	// StartTicks is field 22 of /proc/<pid>/stat (clock ticks since boot) at start.
	StartTicks uint64            `json:"start_ticks"`
	Address    string            `json:"address"`
	Tags       map[string]string `json:"tags,omitempty"`
	Created    time.Time         `json:"created"`
	// Command is argv as given; Path is the executable it resolved to.
	Command []string `json:"command"`
	Path    string   `json:"path,omitempty"`
	Workdir string   `json:"workdir"`
	Cgroup  string   `json:"cgroup,omitempty"`
	// Warnings are limits that could not be applied, reported in Instance.Detail.
	Warnings []string `json:"warnings,omitempty"`
	// Exit is set when this orchestrator reaped the process.
	Exit *exitInfo `json:"exit,omitempty"`
}

// exitInfo is how the process ended, as far as the orchestrator saw it.
type exitInfo struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
}

func readRecord(dir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, "instance.json"))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "instance.json"), err)
	}
	if r.Version != recordVersion {
		return nil, fmt.Errorf("read %s: schema version %d, want %d", filepath.Join(dir, "instance.json"), r.Version, recordVersion)
	}
	return &r, nil
}

// writeRecord replaces instance.json atomically, so a crash never leaves half a record.
func writeRecord(dir string, r *record) error {
	r.Version = recordVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode instance record: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".instance-*.json")
	if err != nil {
		return fmt.Errorf("write instance record: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := firstErr(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write instance record: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "instance.json")); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write instance record: %w", err)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
