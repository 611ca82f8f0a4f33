package monitor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"

	// Registers http_sd_configs with Prometheus' configuration parser.
	_ "github.com/prometheus/prometheus/discovery/http"
)

// supportedDiscovery lists the target sections of a scrape or alertmanager configuration
// that a Monitor understands. Any other *_sd_configs section is refused at load time.
const supportedDiscovery = "static_configs, http_sd_configs"

// LoadConfig reads a standard Prometheus configuration file and checks everything a Monitor
// needs from it before anything starts: that it names only supported service-discovery
// types (each unsupported one is reported with file:line:column), that Prometheus' own
// parser accepts it (its messages carry the line), that its scrape_config_files load, and
// that every rule file parses. Errors name the file; several problems are joined.
func LoadConfig(path string, logger *slog.Logger) (*config.Config, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read prometheus configuration: %w", err)
	}
	if errs := checkDiscovery(path, data); len(errs) > 0 {
		return nil, fmt.Errorf("load prometheus configuration: %w", errors.Join(errs...))
	}
	cfg, err := config.LoadFile(path, false, logger)
	if err != nil {
		return nil, fmt.Errorf("load prometheus configuration: %w", err)
	}
	if _, err := cfg.GetScrapeConfigs(); err != nil {
		return nil, fmt.Errorf("load scrape_config_files of %s: %w", path, err)
	}
	p := parser.NewParser(parser.Options{})
	if err := rules.ParseFiles(cfg.RuleFiles, cfg.GlobalConfig.MetricNameValidationScheme, p, logger); err != nil {
		if old := oneXRuleFiles(cfg.RuleFiles); len(old) > 0 {
			return nil, fmt.Errorf("load rule_files of %s: %s in Prometheus 1.x format; convert with: skyfleet rules convert FILE: %w",
				path, strings.Join(old, ", "), err)
		}
		return nil, fmt.Errorf("load rule_files of %s: %w", path, err)
	}
	return cfg, nil
}

// oneXRuleFiles returns the rule files (of the glob patterns) written in Prometheus 1.x
// syntax, such as the seed's: a line starting with ALERT, or a recording rule `name = expr`.
func oneXRuleFiles(patterns []string) []string {
	var out []string
	for _, pat := range patterns {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				line = strings.TrimSpace(line)
				if strings.HasPrefix(line, "ALERT ") || oneXRecording.MatchString(line) {
					out = append(out, f)
					break
				}
			}
		}
	}
	return out
}

// oneXRecording matches a Prometheus 1.x recording rule line: `name = expr` or `name{l="v"} = expr`.
var oneXRecording = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?\s*=[^=~]`)

// checkDiscovery walks the YAML of a configuration file (and of the scrape_config_files it
// includes) and reports every *_sd_configs section that is not supported. Doing this before
// Prometheus' parser runs turns its "field kubernetes_sd_configs not found" into a message
// that says what to use instead. Syntax errors are left to Prometheus' parser.
func checkDiscovery(path string, data []byte) []error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	var errs []error
	checkList := func(list *yaml.Node, where string) {
		if list == nil || list.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range list.Content {
			if item.Kind != yaml.MappingNode {
				continue
			}
			job := ""
			if v := mapValue(item, "job_name"); v != nil && v.Kind == yaml.ScalarNode {
				job = fmt.Sprintf(" (job %q)", v.Value)
			}
			for k := 0; k+1 < len(item.Content); k += 2 {
				key := item.Content[k]
				if !strings.HasSuffix(key.Value, "_sd_configs") || key.Value == "http_sd_configs" {
					continue
				}
				errs = append(errs, fmt.Errorf("%s:%d:%d: %s[%d].%s%s: service discovery type %s is not supported by skyfleet monitor; supported: %s",
					path, key.Line, key.Column, where, i, key.Value, job, key.Value, supportedDiscovery))
			}
		}
	}
	checkList(mapValue(root, "scrape_configs"), "scrape_configs")
	if alerting := mapValue(root, "alerting"); alerting != nil {
		checkList(mapValue(alerting, "alertmanagers"), "alerting.alertmanagers")
	}
	if files := mapValue(root, "scrape_config_files"); files != nil && files.Kind == yaml.SequenceNode {
		for _, f := range files.Content {
			pattern := f.Value
			if !filepath.IsAbs(pattern) {
				pattern = filepath.Join(filepath.Dir(path), pattern)
			}
			matches, err := filepath.Glob(pattern)
			if err != nil {
				continue // Prometheus' parser reports bad patterns.
			}
			for _, m := range matches {
				b, err := os.ReadFile(m)
				if err != nil {
					continue // GetScrapeConfigs reports unreadable files.
				}
				errs = append(errs, checkDiscovery(m, b)...)
			}
		}
	}
	return errs
}

// mapValue returns the value of key in a YAML mapping node, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
