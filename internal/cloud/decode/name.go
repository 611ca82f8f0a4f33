package decode

import "fmt"

// VMName is the name of a virtual machine whose resource section names none: Occopus'
// unique VM name with skyfleet's prefix,
// skyfleet-{infra_name[:18]}-{infra_id[:8]}-{node[:18]}-{node_id[:8]}. Lengths count
// characters, not bytes, so the name never ends in half a character.
func VMName(infraName, infraID, node, nodeID string) string {
	return fmt.Sprintf("skyfleet-%s-%s-%s-%s", Truncate(infraName, 18), Truncate(infraID, 8), Truncate(node, 18), Truncate(nodeID, 8))
}

// Truncate returns at most the first n characters of s (none when n is negative).
func Truncate(s string, n int) string {
	n = max(n, 0)
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}
