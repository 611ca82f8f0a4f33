package monitor

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageFuncs are the helpers the page templates use.
var pageFuncs = template.FuncMap{
	"labels": func(l labels.Labels) string {
		parts := make([]string, 0, l.Len())
		l.Range(func(x labels.Label) { parts = append(parts, x.Name+"="+quote(x.Value)) })
		return strings.Join(parts, ", ")
	},
	"since": func(now, t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"seconds":  func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"duration": func(d time.Duration) string { return model.Duration(d).String() },
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

var pageTemplates = template.Must(template.New("pages").Funcs(pageFuncs).ParseFS(templateFS, "templates/*.html"))

// alertRow is one active alert of a rule on the /alerts page.
type alertRow struct {
	Labels   labels.Labels
	State    string
	ActiveAt time.Time
	Value    float64
}

// ruleRow is one alerting rule on the /alerts page.
type ruleRow struct {
	Group     string
	File      string
	Name      string
	State     string
	Expr      string
	For       time.Duration
	Labels    labels.Labels
	Health    string
	LastError string
	Alerts    []alertRow
}

type alertsPage struct {
	Now                       time.Time
	Rules                     []ruleRow
	Firing, Pending, Inactive int
}

// alertsPage lists every alerting rule with its state (firing, pending, inactive), its labels
// and each active alert with its labels and the time it became active.
func (s *server) alertsPage(w http.ResponseWriter, _ *http.Request) {
	page := alertsPage{Now: s.now()}
	for _, g := range s.c.rules.RuleGroups() {
		for _, r := range g.Rules() {
			ar, ok := r.(*rules.AlertingRule)
			if !ok {
				continue
			}
			row := ruleRow{
				Group: g.Name(), File: g.File(), Name: ar.Name(), State: ar.State().String(),
				Expr: ar.Query().String(), For: ar.HoldDuration(), Labels: ar.Labels(), Health: string(ar.Health()),
			}
			if err := ar.LastError(); err != nil {
				row.LastError = err.Error()
			}
			for _, a := range ar.ActiveAlerts() {
				row.Alerts = append(row.Alerts, alertRow{Labels: a.Labels, State: a.State.String(), ActiveAt: a.ActiveAt, Value: a.Value})
			}
			switch ar.State() {
			case rules.StateFiring:
				page.Firing++
			case rules.StatePending:
				page.Pending++
			default:
				page.Inactive++
			}
			page.Rules = append(page.Rules, row)
		}
	}
	// Firing first, then pending, then inactive, as Prometheus' page groups them.
	order := map[string]int{"firing": 0, "pending": 1, "inactive": 2}
	slices.SortStableFunc(page.Rules, func(a, b ruleRow) int { return order[a.State] - order[b.State] })
	s.render(w, "alerts.html", page)
}

// targetRow is one scrape target on the /targets page.
type targetRow struct {
	URL        string
	Health     string
	Labels     labels.Labels
	LastScrape time.Time
	Duration   time.Duration
	Error      string
}

type poolRow struct {
	Name    string
	Up      int
	Targets []targetRow
}

type targetsPage struct {
	Now   time.Time
	Pools []poolRow
}

// targetsPage lists every active target by scrape pool (job) with its health, labels, last
// scrape and last error.
func (s *server) targetsPage(w http.ResponseWriter, _ *http.Request) {
	page := targetsPage{Now: s.now()}
	b := labels.NewBuilder(labels.EmptyLabels())
	active := s.c.scrape.TargetsActive()
	for _, p := range sortedPools(active) {
		pool := poolRow{Name: p}
		for _, t := range active[p] {
			row := targetRow{
				URL: t.URL().String(), Health: string(t.Health()), Labels: t.Labels(b),
				LastScrape: t.LastScrape(), Duration: t.LastScrapeDuration(),
			}
			if err := t.LastError(); err != nil {
				row.Error = err.Error()
			}
			if row.Health == "up" {
				pool.Up++
			}
			pool.Targets = append(pool.Targets, row)
		}
		slices.SortFunc(pool.Targets, func(a, b targetRow) int { return strings.Compare(a.URL, b.URL) })
		page.Pools = append(page.Pools, pool)
	}
	s.render(w, "targets.html", page)
}

func (s *server) render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.logger.Error("render page", "page", name, "err", err)
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = buf.WriteTo(w)
}
