package local

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// procStat is the part of /proc/<pid>/stat the provider relies on.
type procStat struct {
	state byte   // field 3: R, S, D, Z, T, …
	pgrp  int    // field 5
	start uint64 // field 22: start time in clock ticks since boot
}

// zombie reports whether the process has exited and only waits to be reaped.
func (s procStat) zombie() bool { return s.state == 'Z' || s.state == 'X' || s.state == 'x' }

// readStat reads /proc/<pid>/stat. A missing process yields an error satisfying
// errors.Is(err, fs.ErrNotExist).
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses the stat line. The command name (field 2) is in parentheses and may
// itself contain spaces and parentheses, so fields are counted after the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc stat: no command name in %q", b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc stat: %d fields after the command name, want at least 20", len(f))
	}
	pgrp, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat: pgrp %q: %w", f[2], err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat: starttime %q: %w", f[19], err)
	}
	return procStat{state: f[0][0], pgrp: pgrp, start: start}, nil
}

// pids lists the numeric entries of /proc.
func pids() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	return out, nil
}

// liveMembers returns the processes of group pgid that have not exited (zombies excluded:
// they hold no resources and cannot be signalled away).
func liveMembers(pgid int) ([]int, error) {
	all, err := pids()
	if err != nil {
		return nil, err
	}
	var out []int
	for _, pid := range all {
		st, err := readStat(pid)
		if err == nil && st.pgrp == pgid && !st.zombie() {
			out = append(out, pid)
		}
	}
	return out, nil
}

// hasEnv reports whether the initial environment of pid contains the exact entry kv.
func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}

// findLeader looks for a live process group leader whose environment names the token. It
// finds a process the provider started but could not record (the orchestrator stopped
// between starting it and writing its pid).
func findLeader(token string) (int, procStat, bool) {
	all, err := pids()
	if err != nil {
		return 0, procStat{}, false
	}
	kv := envNodeID + "=" + token
	for _, pid := range all {
		st, err := readStat(pid)
		if err != nil || st.pgrp != pid || st.zombie() {
			continue
		}
		if hasEnv(pid, kv) {
			return pid, st, true
		}
	}
	return 0, procStat{}, false
}
