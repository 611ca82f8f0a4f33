package local

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultCgroupRoot is where the cgroup v2 hierarchy is expected.
const DefaultCgroupRoot = "/sys/fs/cgroup"

// cgroupParent is the group under the root that holds one sub group per instance.
const cgroupParent = "skyfleet"

// cpuPeriod is the cpu.max period in microseconds (the kernel default).
const cpuPeriod = 100000

// cgroups places instances into per-instance cgroup v2 groups when the machine allows it.
// Whether it does is found out once, on the first instance that asks for a limit.
type cgroups struct {
	root string

	once        sync.Once
	err         error // why no limit can be applied at all
	controllers map[string]bool
}

func (c *cgroups) probe() {
	b, err := os.ReadFile(filepath.Join(c.root, "cgroup.controllers"))
	if err != nil {
		c.err = fmt.Errorf("cgroup v2 not available at %s: %w", c.root, unwrapPath(err))
		return
	}
	c.controllers = map[string]bool{}
	for _, name := range strings.Fields(string(b)) {
		c.controllers[name] = true
	}
	parent := filepath.Join(c.root, cgroupParent)
	if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		c.err = fmt.Errorf("cgroup v2 not writable at %s: %w", c.root, unwrapPath(err))
		return
	}
	// Controllers must be enabled for the children of every level down to the instance
	// groups; a level that already has them enabled accepts the write again. Failures
	// show up when the instance's limit file is written, with that file named.
	for _, ctl := range []string{"cpu", "memory"} {
		if c.controllers[ctl] {
			_ = os.WriteFile(filepath.Join(c.root, "cgroup.subtree_control"), []byte("+"+ctl), 0o644)
			_ = os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+"+ctl), 0o644)
		}
	}
}

// create makes the instance's group and writes its limits. It returns the group's path
// ("" when none was made) and one warning per limit that could not be applied.
func (c *cgroups) create(id string, res Resource) (string, []string) {
	if res.CPUs == 0 && res.Memory == 0 {
		return "", nil
	}
	c.once.Do(c.probe)
	type limit struct {
		key, controller, file, value string
	}
	var limits []limit
	if res.CPUs > 0 {
		quota := int64(math.Ceil(res.CPUs * cpuPeriod))
		quota = max(quota, 1000)
		limits = append(limits, limit{"cpus", "cpu", "cpu.max", fmt.Sprintf("%d %d", quota, cpuPeriod)})
	}
	if res.Memory > 0 {
		limits = append(limits, limit{"memory", "memory", "memory.max", strconv.FormatInt(res.Memory, 10)})
	}
	var warnings []string
	if c.err != nil {
		for _, l := range limits {
			warnings = append(warnings, fmt.Sprintf("%s limit not applied: %v", l.key, c.err))
		}
		return "", warnings
	}
	dir := filepath.Join(c.root, cgroupParent, id)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		for _, l := range limits {
			warnings = append(warnings, fmt.Sprintf("%s limit not applied: create cgroup %s: %v", l.key, dir, unwrapPath(err)))
		}
		return "", warnings
	}
	applied := 0
	for _, l := range limits {
		if !c.controllers[l.controller] {
			warnings = append(warnings, fmt.Sprintf("%s limit not applied: cgroup v2 at %s has no %s controller", l.key, c.root, l.controller))
			continue
		}
		p := filepath.Join(dir, l.file)
		if err := os.WriteFile(p, []byte(l.value), 0o644); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s limit not applied: write %s: %v", l.key, p, unwrapPath(err)))
			continue
		}
		applied++
	}
	if applied == 0 {
		_ = removeCgroup(dir) // best effort: an empty group left behind is harmless
		return "", warnings
	}
	return dir, warnings
}

// join moves pid into the group (used when the process could not be started inside it).
func joinCgroup(dir string, pid int) error {
	p := filepath.Join(dir, "cgroup.procs")
	if err := os.WriteFile(p, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("move pid %d into cgroup %s: %w", pid, dir, unwrapPath(err))
	}
	return nil
}

// removeCgroup deletes an instance group. The kernel refuses (EBUSY) while exiting
// processes still belong to it, so it retries briefly. Plain directories (a test's fake
// hierarchy) are removed with their files.
func removeCgroup(dir string) error {
	if dir == "" {
		return nil
	}
	var err error
	for range 50 {
		err = os.Remove(dir)
		switch {
		case err == nil, errors.Is(err, os.ErrNotExist):
			return nil
		case errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST):
			return os.RemoveAll(dir)
		case errors.Is(err, syscall.EBUSY):
			time.Sleep(20 * time.Millisecond)
			continue
		}
		break
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// unwrapPath drops the *PathError wrapper, whose path the messages already name.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
