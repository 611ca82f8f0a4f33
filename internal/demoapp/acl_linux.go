package demoapp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"syscall"
)

// POSIX ACL entries as Linux stores them in the system.posix_acl_access attribute
// (include/uapi/linux/posix_acl_xattr.h): a little-endian version word, then entries of
// tag, permission and id, sorted by tag and id.
const (
	aclXattr     = "system.posix_acl_access"
	aclVersion   = 2
	aclUserObj   = 0x01
	aclUser      = 0x02
	aclGroupObj  = 0x04
	aclGroup     = 0x08
	aclMask      = 0x10
	aclOther     = 0x20
	aclNoID      = 0xffffffff
	aclExecute   = 1
	aclEntrySize = 8
)

type aclEntry struct {
	tag  uint16
	perm uint16
	id   uint32
}

// grantSearch lets the user uid enter dir through a POSIX ACL entry for that user alone,
// leaving the mode bits of everyone else as they are. It reports whether it changed
// anything. Filesystems without ACL support give an error wrapping errors.ErrUnsupported.
func grantSearch(dir string, uid uint32) (bool, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return false, err
	}
	entries, err := readACL(dir)
	if err != nil {
		return false, err
	}
	if entries == nil {
		// No ACL yet: the minimal one the mode stands for.
		m := uint16(fi.Mode().Perm())
		entries = []aclEntry{
			{aclUserObj, m >> 6 & 7, aclNoID},
			{aclGroupObj, m >> 3 & 7, aclNoID},
			{aclOther, m & 7, aclNoID},
		}
	}
	changed := false
	found, hasMask := false, false
	var groupClass uint16 // what the mask must allow: named users, groups and the owning group
	for i := range entries {
		e := &entries[i]
		switch e.tag {
		case aclUser:
			if e.id == uid {
				found = true
				if e.perm&aclExecute == 0 {
					e.perm |= aclExecute
					changed = true
				}
			}
			groupClass |= e.perm
		case aclGroupObj, aclGroup:
			groupClass |= e.perm
		case aclMask:
			hasMask = true
		}
	}
	if !found {
		entries = append(entries, aclEntry{aclUser, aclExecute, uid})
		groupClass |= aclExecute
		changed = true
	}
	for i := range entries {
		if e := &entries[i]; e.tag == aclMask && e.perm&aclExecute == 0 {
			e.perm |= aclExecute
			changed = true
		}
	}
	if !hasMask {
		entries = append(entries, aclEntry{aclMask, groupClass, aclNoID})
		changed = true
	}
	if !changed {
		return false, nil
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].tag != entries[j].tag {
			return entries[i].tag < entries[j].tag
		}
		return entries[i].id < entries[j].id
	})
	buf := make([]byte, 4, 4+aclEntrySize*len(entries))
	binary.LittleEndian.PutUint32(buf, aclVersion)
	for _, e := range entries {
		buf = binary.LittleEndian.AppendUint16(buf, e.tag)
		buf = binary.LittleEndian.AppendUint16(buf, e.perm)
		buf = binary.LittleEndian.AppendUint32(buf, e.id)
	}
	if err := syscall.Setxattr(dir, aclXattr, buf, 0); err != nil {
		if errors.Is(err, syscall.EOPNOTSUPP) {
			err = fmt.Errorf("%w: %w", errors.ErrUnsupported, err)
		}
		return false, fmt.Errorf("set ACL of %s: %w", dir, err)
	}
	return true, nil
}

// readACL returns dir's access ACL, nil when it has none.
func readACL(dir string) ([]aclEntry, error) {
	buf := make([]byte, 512)
	n, err := syscall.Getxattr(dir, aclXattr, buf)
	if errors.Is(err, syscall.ERANGE) {
		if n, err = syscall.Getxattr(dir, aclXattr, nil); err == nil {
			buf = make([]byte, n)
			n, err = syscall.Getxattr(dir, aclXattr, buf)
		}
	}
	switch {
	case errors.Is(err, syscall.ENODATA):
		return nil, nil
	case errors.Is(err, syscall.EOPNOTSUPP):
		return nil, fmt.Errorf("read ACL of %s: %w: %w", dir, errors.ErrUnsupported, err)
	case err != nil:
		return nil, fmt.Errorf("read ACL of %s: %w", dir, err)
	}
	buf = buf[:n]
	if len(buf) < 4 || binary.LittleEndian.Uint32(buf) != aclVersion || (len(buf)-4)%aclEntrySize != 0 {
		return nil, fmt.Errorf("read ACL of %s: unknown format", dir)
	}
	var out []aclEntry
	for b := buf[4:]; len(b) >= aclEntrySize; b = b[aclEntrySize:] {
		out = append(out, aclEntry{
			tag:  binary.LittleEndian.Uint16(b),
			perm: binary.LittleEndian.Uint16(b[2:]),
			id:   binary.LittleEndian.Uint32(b[4:]),
		})
	}
	return out, nil
}

// aclAllows reports whether dir's ACL gives uid search permission through a named entry.
func aclAllows(dir string, uid uint32) bool {
	entries, err := readACL(dir)
	if err != nil || entries == nil {
		return false
	}
	user, mask := false, true
	for _, e := range entries {
		switch {
		case e.tag == aclUser && e.id == uid:
			user = e.perm&aclExecute != 0
		case e.tag == aclMask:
			mask = e.perm&aclExecute != 0
		}
	}
	return user && mask
}
