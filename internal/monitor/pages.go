package monitor

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
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

// queryRow is one result of the /graph page.
type queryRow struct {
	Series string
	Value  string
}

type graphPage struct {
	Now   time.Time
	Expr  string
	Type  string
	Error string
	Rows  []queryRow
}

// graphPage evaluates one instant query and lists its result. It is where the generatorURL of
// every alert points (/graph?g0.expr=...), so a link followed from Alertmanager or skyfleet's
// decision log shows the expression's current value rather than a 404.
func (s *server) graphPage(w http.ResponseWriter, r *http.Request) {
	page := graphPage{Now: s.now(), Expr: r.FormValue("g0.expr")}
	if page.Expr == "" {
		page.Expr = r.FormValue("expr")
	}
	if page.Expr != "" {
		s.evalForPage(r, &page)
	}
	s.render(w, "graph.html", page)
}

func (s *server) evalForPage(r *http.Request, page *graphPage) {
	q, err := s.c.engine.NewInstantQuery(r.Context(), s.c.db, nil, page.Expr, page.Now)
	if err != nil {
		page.Error = err.Error()
		return
	}
	defer q.Close()
	res := q.Exec(r.Context())
	if res.Err != nil {
		page.Error = res.Err.Error()
		return
	}
	page.Type = string(res.Value.Type())
	format := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	switch v := res.Value.(type) {
	case promql.Vector:
		for _, smp := range v {
			val := format(smp.F)
			if smp.H != nil {
				val = smp.H.String()
			}
			page.Rows = append(page.Rows, queryRow{Series: seriesString(smp.Metric), Value: val})
		}
	case promql.Matrix:
		for _, ser := range v {
			vals := make([]string, 0, len(ser.Floats))
			for _, p := range ser.Floats {
				vals = append(vals, format(p.F)+" @"+format(float64(p.T)/1000))
			}
			page.Rows = append(page.Rows, queryRow{Series: seriesString(ser.Metric), Value: strings.Join(vals, ", ")})
		}
	case promql.Scalar:
		page.Rows = append(page.Rows, queryRow{Series: "scalar", Value: format(v.V)})
	case promql.String:
		page.Rows = append(page.Rows, queryRow{Series: "string", Value: v.V})
	}
}

// seriesString writes a series as PromQL does: name{label="value", ...}.
func seriesString(l labels.Labels) string {
	name := l.Get(model.MetricNameLabel)
	rest := labels.NewBuilder(l).Del(model.MetricNameLabel).Labels()
	if rest.IsEmpty() && name != "" {
		return name
	}
	return name + rest.String()
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
