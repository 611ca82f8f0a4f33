package registry

import (
	"strconv"

	"github.com/skyfleet/skyfleet/internal/descriptor"

	yaml "go.yaml.in/yaml/v3"
)

// DefaultMetricsPort is the scrape port published for a node whose variables do not set
// metrics_port: node_exporter's port, as the seed architecture scrapes every node there.
const DefaultMetricsPort = 9100

// nodeInfo is what the registry needs from a node's descriptor entry.
type nodeInfo struct {
	// metricsPort is the node's metrics_port variable, or DefaultMetricsPort.
	metricsPort int
}

// parseNodes reads the infrastructure name, node names and their metrics_port variables
// (node variables merged over the infrastructure's) from a stored descriptor, with the
// descriptor parser. A stored descriptor that parser refuses (one written with import tags,
// which only the file loader resolves) is read leniently for the same three keys; if even that
// fails the node list is empty and every port is DefaultMetricsPort, and nodes are still known
// from their targets and instances.
func parseNodes(text string) (infraName string, nodes map[string]nodeInfo) {
	nodes = map[string]nodeInfo{}
	if in, _, err := descriptor.ParseInfra("stored descriptor", []byte(text)); err == nil {
		for _, n := range in.Nodes {
			port, ok := portOf(n.Variables["metrics_port"])
			if !ok {
				port = DefaultMetricsPort
			}
			nodes[n.Name] = nodeInfo{metricsPort: port}
		}
		return in.Name, nodes
	}
	var doc struct {
		Name      string         `yaml:"infra_name"`
		Variables map[string]any `yaml:"variables"`
		Nodes     []struct {
			Name      string         `yaml:"name"`
			Variables map[string]any `yaml:"variables"`
		} `yaml:"nodes"`
	}
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return "", nodes
	}
	infraPort, _ := portOf(doc.Variables["metrics_port"])
	for _, n := range doc.Nodes {
		if n.Name == "" {
			continue
		}
		port, ok := portOf(n.Variables["metrics_port"])
		switch {
		case ok:
		case infraPort != 0:
			port = infraPort
		default:
			port = DefaultMetricsPort
		}
		nodes[n.Name] = nodeInfo{metricsPort: port}
	}
	return doc.Name, nodes
}

// portOf accepts a port written as a YAML integer or string.
func portOf(v any) (int, bool) {
	var p int
	switch x := v.(type) {
	case int:
		p = x
	case uint64:
		p = int(x)
	case string:
		n, err := strconv.Atoi(x)
		if err != nil {
			return 0, false
		}
		p = n
	default:
		return 0, false
	}
	if p < 1 || p > 65535 {
		return 0, false
	}
	return p, true
}
