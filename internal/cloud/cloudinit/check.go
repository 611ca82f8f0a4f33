package cloudinit

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size limits of user data, in raw bytes (before base64 encoding), to pass as Check's limit.
const (
	// EC2Limit is Amazon EC2's limit: "User data is limited to 16 KB, in raw form, before
	// it is base64-encoded" (EC2 User Guide, "Run commands when you launch an EC2
	// instance with user data input").
	EC2Limit = 16384
	// NovaBase64Limit is OpenStack Nova's limit on the base64-encoded user_data of a server
	// create request ("Restricted to 65535 bytes", Compute API reference, POST /servers;
	// the database column is a MEDIUMTEXT guarded by this API schema limit).
	NovaBase64Limit = 65535
	// NovaLimit is the largest raw size whose base64 encoding fits NovaBase64Limit:
	// 4·⌈n/3⌉ ≤ 65535 gives n ≤ 49149.
	NovaLimit = NovaBase64Limit / 4 * 3
)

// ErrTooLarge is wrapped by Check's error when the user data exceeds the limit.
var ErrTooLarge = errors.New("user data too large")

// ErrInvalid is wrapped by Check's error when the user data is not a format cloud-init
// understands or a #cloud-config document does not parse.
var ErrInvalid = errors.New("invalid user data")

// knownPrefixes are the first-line markers cloud-init dispatches on (its "starts with"
// table), other than #cloud-config which Check parses.
var knownPrefixes = []string{
	"#!", "#include-once", "#include", "#cloud-config-archive", "#cloud-config-jsonp",
	"#cloud-boothook", "#part-handler", "#upstart-job",
}

// Check verifies rendered user data for a cloud whose limit (raw bytes; EC2Limit,
// NovaLimit) is given; limit ≤ 0 skips the size check. Empty user data is valid (the
// instance boots without any). Accepted formats are those cloud-init dispatches on:
// `#cloud-config` (must parse as a YAML mapping), `#!` scripts, `#include`,
// `#cloud-boothook`, `#part-handler`, `#cloud-config-archive`, `## template: jinja`
// headers, MIME multipart and gzip data; those other than #cloud-config are not parsed.
// All problems are reported at once; no error quotes the user data, which may hold
// rendered secrets.
func Check(userData string, limit int) error {
	if userData == "" {
		return nil
	}
	var errs []error
	if limit > 0 && len(userData) > limit {
		errs = append(errs, fmt.Errorf("%w: %d bytes (%d base64-encoded), over the limit of %d bytes (%d base64-encoded); move large files out of the cloud-config (for example fetch them from the instance)",
			ErrTooLarge, len(userData), base64.StdEncoding.EncodedLen(len(userData)), limit, base64.StdEncoding.EncodedLen(limit)))
	}
	if err := checkFormat(userData); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("check user data: %w", errors.Join(errs...))
	}
	return nil
}

// checkFormat dispatches as cloud-init does: on the start of the text, case-insensitively,
// after leading white space.
func checkFormat(userData string) error {
	if strings.HasPrefix(userData, "\x1f\x8b") {
		return nil // gzip: cloud-init decompresses it on the instance
	}
	body := strings.TrimLeft(userData, " \t\r\n")
	lower := strings.ToLower(body)
	if strings.HasPrefix(lower, "## template:") {
		// A template rendered by cloud-init itself on the instance; its content is not
		// YAML until then.
		return nil
	}
	switch {
	case strings.HasPrefix(lower, "#cloud-config-archive"), strings.HasPrefix(lower, "#cloud-config-jsonp"):
		return nil
	case strings.HasPrefix(lower, "#cloud-config"):
		return checkCloudConfig(userData)
	case strings.HasPrefix(lower, "content-type:"), strings.HasPrefix(lower, "mime-version:"):
		return nil
	}
	for _, p := range knownPrefixes {
		if strings.HasPrefix(lower, p) {
			return nil
		}
	}
	first, _, _ := strings.Cut(body, "\n")
	marker := first
	if len(marker) > 20 || strings.ContainsAny(marker, ":=") {
		marker = "" // do not echo what may be content rather than a marker
	}
	hint := ""
	if marker != "" {
		hint = fmt.Sprintf(" (it starts with %q)", marker)
	}
	return fmt.Errorf("%w: cloud-init does not recognise the format%s; start it with #cloud-config, #! (a script), #include, #cloud-boothook, #part-handler or a MIME multipart header",
		ErrInvalid, hint)
}

// checkCloudConfig parses a #cloud-config document. yaml.v3 reports "line N" counted from
// the first line of the user data (the #cloud-config line is a YAML comment), so the
// numbers match the rendered text.
func checkCloudConfig(userData string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(userData), &doc); err != nil {
		return fmt.Errorf("%w: #cloud-config does not parse as YAML: %s", ErrInvalid, yamlMessage(userData, err))
	}
	if len(doc.Content) == 0 {
		return nil // only the #cloud-config comment: valid and empty
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode && (root.Kind != yaml.ScalarNode || root.Tag != "!!null") {
		return fmt.Errorf("%w: #cloud-config line %d: the document must be a mapping of cloud-config keys (for example packages:, runcmd:, write_files:), not a %s",
			ErrInvalid, root.Line, kindName(root.Kind))
	}
	// PyYAML, which cloud-init uses, keeps the last of two equal keys, so a second runcmd:
	// silently drops the first; that is always a template mistake.
	var errs []error
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if first, dup := seen[k.Value]; dup {
			errs = append(errs, fmt.Errorf("%w: #cloud-config line %d: key %q repeats the one on line %d, whose value cloud-init would ignore; merge them",
				ErrInvalid, k.Line, k.Value, first))
			continue
		}
		seen[k.Value] = k.Line
	}
	return errors.Join(errs...)
}

// maxProbeLines bounds the prefix search of yamlMessage (user data is at most a few
// thousand lines; beyond this the parser's own line is reported).
const maxProbeLines = 5000

// lineRE matches yaml.v3's "line N: " position.
var lineRE = regexp.MustCompile(`^line (\d+): `)

// yamlMessage turns a yaml.v3 syntax error into "line N: message". yaml.v3 reports the line
// where the enclosing block started, which for a bad indentation deep in a runcmd list is
// line 1; the first line whose prefix of the document stops parsing is where the user has
// to look, so that is reported instead. Syntax errors never quote content.
func yamlMessage(text string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > maxProbeLines {
		return msg
	}
	bare := lineRE.ReplaceAllString(msg, "")
	var n yaml.Node
	for k := 1; k <= len(lines); k++ {
		if yaml.Unmarshal([]byte(strings.Join(lines[:k], "")), &n) != nil {
			return fmt.Sprintf("line %d: %s", k, bare)
		}
	}
	return msg
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "plain value"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}
