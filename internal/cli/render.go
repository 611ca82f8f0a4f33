package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/template"
)

// placeholderInfraID is render's default infra_id: fixed, so that output is reproducible.
const placeholderInfraID = "00000000-0000-0000-0000-000000000000"

// placeholderIP stands for the new instance's own address in health-check URLs, which is
// only known once the instance exists.
const placeholderIP = "<ip>"

type renderOpts struct {
	nodesFile, infraFile, node string
	ips                        []string
	strict, allowCmd           bool
	nodeID, infraID, selfIP    string
	server                     string
	impl                       int
}

func newRenderCmd(e *env) *cobra.Command {
	o := &renderOpts{}
	cmd := &cobra.Command{
		Use:   "render --nodes NODEDEFS --infra INFRA --node NAME [--ip NODE=ADDR ...]",
		Short: "Print the rendered resource, contextualisation and health-check URLs of one new instance",
		Long: `render shows what a new instance of node NAME would receive: its resource section, its
contextualisation (cloud-init user data for type cloudinit, the rendered section as YAML for other
types) and its health-check URLs, all rendered with the Occopus template context. It is meant for
debugging templates before building an infrastructure; nothing is created.

The output is a series of YAML documents separated by '---' lines. Warnings (such as undefined
variables, which render empty) go to stderr; with --strict they are errors.

Other nodes' addresses are not known without a running infrastructure: give them with --ip,
once per instance in creation order (the first is what getip returns). NODE=ADDR/PRIVATE also sets
the address that getprivip returns.

node_id is a fresh UUID unless --node-id is given; infra_id is ` + placeholderInfraID + `
unless --infra-id is given, so that the output is reproducible. In health-check URLs, ip is the
new instance's own address, ` + placeholderIP + ` unless --self-ip is given.`,
		Example: `  skyfleet render --nodes nodes/node_definitions.yaml --infra infra.yaml --node app --ip db=10.0.0.5
  skyfleet render --nodes nodes.yaml --infra infra.yaml --node lb --ip app=10.0.1.1 --ip app=10.0.1.2 --strict`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRender(e.stdout, e.stderr, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.nodesFile, "nodes", "", "node definition file (required)")
	f.StringVar(&o.infraFile, "infra", "", "infrastructure descriptor (required)")
	f.StringVar(&o.node, "node", "", "name of the node to render an instance of (required)")
	f.StringArrayVar(&o.ips, "ip", nil, "NODE=ADDR[/PRIVATE]: an instance of another node, for getip/getprivip/getipall (repeatable, in creation order)")
	f.BoolVar(&o.strict, "strict", false, "treat undefined template variables as errors")
	f.BoolVar(&o.allowCmd, "allow-template-cmd", false, "let templates run local commands with cmd()")
	f.StringVar(&o.nodeID, "node-id", "", "node_id of the rendered instance (default: a fresh UUID)")
	f.StringVar(&o.infraID, "infra-id", placeholderInfraID, "infra_id to render with")
	f.StringVar(&o.selfIP, "self-ip", placeholderIP, "the instance's own address: ip in health-check URLs, and in every template of a local-provider node (whose address is known before it starts)")
	f.StringVar(&o.server, "server", "http://127.0.0.1:5000", "the orchestrator URL the templates see as skyfleet_server")
	f.IntVar(&o.impl, "impl", 0, "which of the implementations matching the node's filter to render (0-based; Occopus picks one at random)")
	for _, name := range []string{"nodes", "infra", "node"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// renderAddresses answers getip and friends from --ip flags, in the order given (the first
// --ip is the oldest instance).
type renderAddresses struct {
	byNode map[string][]template.NodeAddress
	all    []template.NodeAddress
}

var _ template.InfraLookup = renderAddresses{}

func (a renderAddresses) Instances(node string) []template.NodeAddress { return a.byNode[node] }

func (a renderAddresses) AllInstances() []template.NodeAddress { return a.all }

func parseRenderIPs(flags []string) (renderAddresses, error) {
	book := renderAddresses{byNode: map[string][]template.NodeAddress{}}
	for _, f := range flags {
		node, addr, ok := strings.Cut(f, "=")
		node, addr = strings.TrimSpace(node), strings.TrimSpace(addr)
		if !ok || node == "" || addr == "" {
			return renderAddresses{}, fmt.Errorf("--ip %q: want NODE=ADDR or NODE=ADDR/PRIVATE, e.g. --ip db=10.0.0.5", f)
		}
		pub, priv, _ := strings.Cut(addr, "/")
		a := template.NodeAddress{Address: pub, Private: priv}
		book.byNode[node] = append(book.byNode[node], a)
		book.all = append(book.all, a)
	}
	return book, nil
}

// runRender renders and writes the result to stdout and the warnings and descriptor
// problems to stderr; nothing goes to stdout when rendering fails.
func runRender(stdout, stderr io.Writer, o *renderOpts) error {
	var diag bytes.Buffer
	out, err := renderInstance(&diag, o)
	if _, werr := stderr.Write(diag.Bytes()); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// renderInstance returns what render prints on stdout, writing diagnostics to stderr.
func renderInstance(stderr *bytes.Buffer, o *renderOpts) ([]byte, error) {
	book, err := parseRenderIPs(o.ips)
	if err != nil {
		return nil, err
	}
	defs, dwarns, err := descriptor.LoadNodeDefsFile(o.nodesFile)
	printRenderDescWarnings(stderr, dwarns)
	if err != nil {
		return nil, renderLoadError(stderr, err)
	}
	in, iwarns, err := descriptor.LoadInfraFile(o.infraFile)
	printRenderDescWarnings(stderr, iwarns)
	if err != nil {
		return nil, renderLoadError(stderr, err)
	}
	if err := defs.CheckInfra(in); err != nil {
		return nil, renderLoadError(stderr, err)
	}
	node, ok := in.Node(o.node)
	if !ok {
		names := make([]string, 0, len(in.Nodes))
		for _, n := range in.Nodes {
			names = append(names, n.Name)
		}
		return nil, fmt.Errorf("render: %s has no node named %q (nodes: %s)", o.infraFile, o.node, strings.Join(names, ", "))
	}
	for name := range book.byNode {
		if _, ok := in.Node(name); !ok {
			return nil, fmt.Errorf("render: --ip %s=...: %s has no node named %q", name, o.infraFile, name)
		}
	}
	def := defs[node.Type]
	matching := def.Matching(node.Filter)
	if o.impl < 0 || o.impl >= len(matching) {
		return nil, fmt.Errorf("render: --impl %d: node %q has %d implementation(s) of %q matching its filter; use 0..%d",
			o.impl, node.Name, len(matching), node.Type, len(matching)-1)
	}
	impl, err := def.Select(node.Filter, func(int) int { return o.impl })
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	nodeID := o.nodeID
	if nodeID == "" {
		nodeID = uuid.NewString()
	}
	ctx := &template.Context{
		InfraID:   o.infraID,
		InfraName: in.Name,
		UserID:    in.UserID,
		NodeID:    nodeID,
		Name:      node.Name,
		Type:      node.Type,
		Variables: node.Variables,
		Sections:  renderSections(node, impl),
		Lookup:    book,
	}
	ctx.Sections["skyfleet_server"] = o.server
	if impl.ResourceType() == "local" {
		// The engine reserves a local instance's address before rendering (see
		// cloud.AddressReserver), so its templates see ip; cloud instances get theirs later.
		ctx.IP = o.selfIP
	}
	r := template.New(template.Options{Strict: o.strict, AllowCmd: o.allowCmd})
	prefix := "node_def:" + node.Type

	var out bytes.Buffer
	var warns []template.Warning
	fail := func(err error) error {
		printRenderWarnings(stderr, warns)
		return explainRenderErr(err, in, o.infraFile)
	}

	fmt.Fprintf(&out, "# node %q (type %q), implementation %d of %d matching its filter, defined at %s\n",
		node.Name, node.Type, o.impl+1, len(matching), impl.Pos)
	fmt.Fprintf(&out, "# node_id: %s\n# infra_id: %s\n", nodeID, o.infraID)

	res, w, err := r.RenderValue(prefix+".resource", impl.Resource, ctx)
	warns = append(warns, w...)
	if err != nil {
		return nil, fail(err)
	}
	out.WriteString("--- # resource\n")
	if err := writeRenderYAML(&out, res); err != nil {
		return nil, err
	}

	cz, w, err := r.Contextualisation(prefix+".contextualisation", impl.Contextualisation, ctx)
	warns = append(warns, w...)
	if err != nil {
		return nil, fail(err)
	}
	switch {
	case cz == nil:
		out.WriteString("--- # contextualisation: none\n")
	case cz.Type == "cloudinit":
		out.WriteString("--- # contextualisation: cloudinit user data\n")
		out.WriteString(cz.UserData)
		if !strings.HasSuffix(cz.UserData, "\n") {
			out.WriteString("\n")
		}
	default:
		fmt.Fprintf(&out, "--- # contextualisation: %s\n", cz.Type)
		if err := writeRenderYAML(&out, cz.Section); err != nil {
			return nil, err
		}
	}

	if urls, ok := impl.HealthCheck["urls"]; ok {
		hc := *ctx
		hc.IP = o.selfIP
		rendered, w, err := r.RenderValue(prefix+".health_check.urls", urls, &hc)
		warns = append(warns, w...)
		if err != nil {
			return nil, fail(err)
		}
		out.WriteString("--- # health_check.urls\n")
		if err := writeRenderYAML(&out, rendered); err != nil {
			return nil, err
		}
	}
	printRenderWarnings(stderr, warns)
	return out.Bytes(), nil
}

// renderSections gathers what Occopus exposes at the top level of the template context besides
// the constants: the node definition's sections and the node's scaling and filter.
func renderSections(n *descriptor.Node, impl *descriptor.Impl) map[string]any {
	s := map[string]any{
		"resource": impl.Resource,
		"scaling":  map[string]any{"min": n.Scaling.Min, "max": n.Scaling.Max},
	}
	if impl.Contextualisation != nil {
		s["contextualisation"] = impl.Contextualisation
	}
	if impl.HealthCheck != nil {
		s["health_check"] = impl.HealthCheck
	}
	if impl.ConfigManagement != nil {
		s["config_management"] = impl.ConfigManagement
	}
	if n.Filter != nil {
		s["filter"] = n.Filter
	}
	return s
}

// explainRenderErr adds what to do when a template asks for the address of a node that
// render knows no instance of.
func explainRenderErr(err error, in *descriptor.Infra, infraFile string) error {
	var ni *template.NoInstanceError
	if errors.As(err, &ni) {
		if _, ok := in.Node(ni.Node); !ok {
			return fmt.Errorf("render: %w (%s has no node named %q)", err, infraFile, ni.Node)
		}
		return fmt.Errorf("render: %w; pass --ip %s=ADDRESS to render with an address for it", err, ni.Node)
	}
	return fmt.Errorf("render: %w", err)
}

func writeRenderYAML(w io.Writer, v any) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("render: encode YAML: %w", err)
	}
	return enc.Close()
}

func printRenderWarnings(w *bytes.Buffer, warns []template.Warning) {
	for _, wa := range warns {
		fmt.Fprintln(w, "warning: "+wa.String())
	}
}

func printRenderDescWarnings(w *bytes.Buffer, warns []descriptor.Warning) {
	for _, wa := range warns {
		fmt.Fprintln(w, wa.String())
	}
}

// renderLoadError prints a descriptor's errors one per line and returns an ExitError, as
// validate does; other errors are returned as they are.
func renderLoadError(stderr *bytes.Buffer, err error) error {
	var es descriptor.Errors
	if !errors.As(err, &es) {
		return fmt.Errorf("render: %w", err)
	}
	msgs := make([]string, 0, len(es))
	for _, e := range es {
		msgs = append(msgs, e.Error())
	}
	for _, m := range slices.Compact(msgs) {
		fmt.Fprintln(stderr, m)
	}
	return &ExitError{Code: 1}
}
