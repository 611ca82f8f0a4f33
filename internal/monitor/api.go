package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// The JSON shapes below are those of Prometheus' web/api/v1 (v0.316.0), field for field, so
// that client_golang's api/prometheus/v1, Grafana and promtool read them unchanged.

// apiResponse is Prometheus' response envelope.
type apiResponse struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

// Prometheus' error types and the HTTP status each maps to.
const (
	errorTimeout     = "timeout"
	errorCanceled    = "canceled"
	errorExec        = "execution"
	errorBadData     = "bad_data"
	errorInternal    = "internal"
	errorUnavailable = "unavailable"
)

// statusClientClosedConnection is the status Prometheus answers a cancelled query with.
const statusClientClosedConnection = 499

// apiError is an error with its Prometheus error type.
type apiError struct {
	typ string
	err error
}

func errorCode(typ string) int {
	switch typ {
	case errorBadData:
		return http.StatusBadRequest
	case errorExec:
		return http.StatusUnprocessableEntity
	case errorCanceled:
		return statusClientClosedConnection
	case errorTimeout, errorUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// apiResult is what an API function returns: data and warnings, or an error; finalizer (if
// set) runs after the response is written, as a query's Close must.
type apiResult struct {
	data      any
	err       *apiError
	warnings  annotations.Annotations
	query     string
	finalizer func()
}

type apiFunc func(r *http.Request) apiResult

func badParam(err error, name string) apiResult {
	return apiResult{err: &apiError{errorBadData, fmt.Errorf("invalid parameter %q: %w", name, err)}}
}

// api serves Prometheus' query API over one Run's components.
type api struct {
	s *server
}

// wrap turns an apiFunc into a handler that writes the envelope.
func (a *api) wrap(f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res := f(r)
		if res.finalizer != nil {
			defer res.finalizer()
		}
		if res.err != nil {
			a.respond(w, errorCode(res.err.typ), apiResponse{Status: "error", ErrorType: res.err.typ, Error: res.err.err.Error(), Data: res.data})
			return
		}
		warn, info := res.warnings.AsStrings(res.query, 10, 10)
		a.respond(w, http.StatusOK, apiResponse{Status: "success", Data: res.data, Warnings: warn, Infos: info})
	}
}

func (a *api) respond(w http.ResponseWriter, code int, resp apiResponse) {
	b, err := json.Marshal(resp)
	if err != nil {
		a.s.logger.Error("encode api response", "err", err)
		b, _ = json.Marshal(apiResponse{Status: "error", ErrorType: errorInternal, Error: "encode response: " + err.Error()})
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// register mounts the API routes on mux, each for GET and POST as in Prometheus.
func (a *api) register(mux *http.ServeMux) {
	routes := map[string]apiFunc{
		"/api/v1/query":               a.query,
		"/api/v1/query_range":         a.queryRange,
		"/api/v1/labels":              a.labelNames,
		"/api/v1/label/{name}/values": a.labelValues,
		"/api/v1/series":              a.series,
		"/api/v1/metadata":            a.metadata,
		"/api/v1/alerts":              a.alerts,
		"/api/v1/rules":               a.rules,
		"/api/v1/targets":             a.targets,
		"/api/v1/alertmanagers":       a.alertmanagers,
		"/api/v1/status/buildinfo":    a.buildinfo,
	}
	for path, f := range routes {
		h := a.wrap(f)
		mux.Handle("GET "+path, h)
		mux.Handle("POST "+path, h)
	}
}

// queryData is the data of a query response.
type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     parser.Value     `json:"result"`
}

func (a *api) queryOpts(r *http.Request) (promql.QueryOpts, error) {
	var lookback time.Duration
	if v := r.FormValue("lookback_delta"); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("error parsing lookback delta duration: %w", err)
		}
		lookback = d
	}
	return promql.NewPrometheusQueryOpts(false, lookback, nil), nil
}

func (a *api) queryContext(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	ctx := r.Context()
	v := r.FormValue("timeout")
	if v == "" {
		return ctx, func() {}, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return nil, nil, &apiError{errorBadData, fmt.Errorf("invalid parameter %q: %w", "timeout", err)}
	}
	if d <= 0 {
		return nil, nil, &apiError{errorBadData, fmt.Errorf("invalid parameter %q: timeout must be positive, got %s", "timeout", d)}
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, nil
}

func (a *api) query(r *http.Request) apiResult {
	ts, err := parseTimeParam(r, "time", a.s.now())
	if err != nil {
		return badParam(err, "time")
	}
	ctx, cancel, aerr := a.queryContext(r)
	if aerr != nil {
		return apiResult{err: aerr}
	}
	defer cancel()
	opts, err := a.queryOpts(r)
	if err != nil {
		return apiResult{err: &apiError{errorBadData, err}}
	}
	qs := r.FormValue("query")
	q, err := a.s.c.engine.NewInstantQuery(ctx, a.s.c.db, opts, qs, ts)
	if err != nil {
		return constructionError(err)
	}
	res := q.Exec(ctx)
	if res.Err != nil {
		return apiResult{err: execError(res.Err), warnings: res.Warnings, query: qs, finalizer: q.Close}
	}
	return apiResult{data: queryData{ResultType: res.Value.Type(), Result: nonNil(res.Value)}, warnings: res.Warnings, query: qs, finalizer: q.Close}
}

func (a *api) queryRange(r *http.Request) apiResult {
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return badParam(err, "start")
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return badParam(err, "end")
	}
	if end.Before(start) {
		return badParam(errors.New("end timestamp must not be before start time"), "end")
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return badParam(err, "step")
	}
	if step <= 0 {
		return badParam(errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"), "step")
	}
	if end.Sub(start)/step > 11000 {
		return apiResult{err: &apiError{errorBadData, errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")}}
	}
	ctx, cancel, aerr := a.queryContext(r)
	if aerr != nil {
		return apiResult{err: aerr}
	}
	defer cancel()
	opts, err := a.queryOpts(r)
	if err != nil {
		return apiResult{err: &apiError{errorBadData, err}}
	}
	qs := r.FormValue("query")
	q, err := a.s.c.engine.NewRangeQuery(ctx, a.s.c.db, opts, qs, start, end, step)
	if err != nil {
		return constructionError(err)
	}
	res := q.Exec(ctx)
	if res.Err != nil {
		return apiResult{err: execError(res.Err), warnings: res.Warnings, query: qs, finalizer: q.Close}
	}
	return apiResult{data: queryData{ResultType: res.Value.Type(), Result: nonNil(res.Value)}, warnings: res.Warnings, query: qs, finalizer: q.Close}
}

// nonNil makes empty vectors and matrices encode as [] rather than null, as Prometheus does.
func nonNil(v parser.Value) parser.Value {
	switch x := v.(type) {
	case promql.Vector:
		if x == nil {
			return promql.Vector{}
		}
	case promql.Matrix:
		if x == nil {
			return promql.Matrix{}
		}
	}
	return v
}

func constructionError(err error) apiResult {
	var eqt promql.ErrQueryTimeout
	var eqc promql.ErrQueryCanceled
	if errors.As(err, &eqt) || errors.As(err, &eqc) {
		return apiResult{err: execError(err)}
	}
	return badParam(err, "query")
}

// execError maps a query's execution error to Prometheus' error type.
func execError(err error) *apiError {
	var eqc promql.ErrQueryCanceled
	var eqt promql.ErrQueryTimeout
	var es promql.ErrStorage
	switch {
	case errors.As(err, &eqc):
		return &apiError{errorCanceled, err}
	case errors.As(err, &eqt):
		return &apiError{errorTimeout, err}
	case errors.As(err, &es):
		return &apiError{errorInternal, err}
	case errors.Is(err, context.Canceled):
		return &apiError{errorCanceled, err}
	}
	return &apiError{errorExec, err}
}

var (
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()
)

// selectorRange reads the optional start and end parameters of the metadata routes.
func selectorRange(r *http.Request) (time.Time, time.Time, *apiResult) {
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		res := badParam(err, "start")
		return start, start, &res
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		res := badParam(err, "end")
		return start, end, &res
	}
	return start, end, nil
}

func (a *api) parseMatchers(r *http.Request) ([][]*labels.Matcher, error) {
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("error parsing form values: %w", err)
	}
	var sets [][]*labels.Matcher
	for _, s := range r.Form["match[]"] {
		ms, err := a.s.parser.ParseMetricSelector(s)
		if err != nil {
			return nil, err
		}
		sets = append(sets, ms)
	}
	return sets, nil
}

func (a *api) labelNames(r *http.Request) apiResult {
	return a.labelsFor(r, "")
}

func (a *api) labelValues(r *http.Request) apiResult {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return apiResult{err: &apiError{errorBadData, fmt.Errorf("invalid label name: %q", name)}}
	}
	return a.labelsFor(r, name)
}

// labelsFor answers /labels (name empty) and /label/NAME/values: the union over match[] sets.
func (a *api) labelsFor(r *http.Request, name string) apiResult {
	start, end, bad := selectorRange(r)
	if bad != nil {
		return *bad
	}
	sets, err := a.parseMatchers(r)
	if err != nil {
		return apiResult{err: &apiError{errorBadData, err}}
	}
	q, err := a.s.c.db.Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return apiResult{err: &apiError{errorExec, err}}
	}
	defer func() { _ = q.Close() }()
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	seen := map[string]struct{}{}
	var warnings annotations.Annotations
	for _, ms := range sets {
		var vals []string
		var ws annotations.Annotations
		if name == "" {
			vals, ws, err = q.LabelNames(r.Context(), &storage.LabelHints{}, ms...)
		} else {
			vals, ws, err = q.LabelValues(r.Context(), name, &storage.LabelHints{}, ms...)
		}
		if err != nil {
			return apiResult{err: &apiError{errorExec, err}, warnings: ws}
		}
		warnings.Merge(ws)
		for _, v := range vals {
			seen[v] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return apiResult{data: out, warnings: warnings}
}

func (a *api) series(r *http.Request) apiResult {
	start, end, bad := selectorRange(r)
	if bad != nil {
		return *bad
	}
	sets, err := a.parseMatchers(r)
	if err != nil {
		return apiResult{err: &apiError{errorBadData, err}}
	}
	if len(sets) == 0 {
		return apiResult{err: &apiError{errorBadData, errors.New("no match[] parameter provided")}}
	}
	q, err := a.s.c.db.Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return apiResult{err: &apiError{errorExec, err}}
	}
	defer func() { _ = q.Close() }()
	hints := &storage.SelectHints{Start: start.UnixMilli(), End: end.UnixMilli(), Func: "series"}
	seen := map[uint64]struct{}{}
	out := []labels.Labels{}
	var warnings annotations.Annotations
	for _, ms := range sets {
		ss := q.Select(r.Context(), false, hints, ms...)
		for ss.Next() {
			l := ss.At().Labels()
			if _, ok := seen[l.Hash()]; ok {
				continue
			}
			seen[l.Hash()] = struct{}{}
			out = append(out, l)
		}
		warnings.Merge(ss.Warnings())
		if err := ss.Err(); err != nil {
			return apiResult{err: &apiError{errorExec, err}, warnings: warnings}
		}
	}
	slices.SortFunc(out, labels.Compare)
	return apiResult{data: out, warnings: warnings}
}

// metadata answers /api/v1/metadata from what the active targets exposed (TYPE, HELP, UNIT),
// with Prometheus' metric, limit and limit_per_metric parameters.
func (a *api) metadata(r *http.Request) apiResult {
	limit, limitPerMetric := -1, -1
	for name, dst := range map[string]*int{"limit": &limit, "limit_per_metric": &limitPerMetric} {
		if v := r.FormValue(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return apiResult{err: &apiError{errorBadData, fmt.Errorf("%s must be a number", name)}}
			}
			*dst = n
		}
	}
	metric := r.FormValue("metric")
	sets := map[string]map[metadata.Metadata]struct{}{}
	add := func(family string, md metadata.Metadata) {
		ms, ok := sets[family]
		if limitPerMetric > 0 && len(ms) >= limitPerMetric {
			return
		}
		if !ok {
			ms = map[metadata.Metadata]struct{}{}
			sets[family] = ms
		}
		ms[md] = struct{}{}
	}
	for _, targets := range a.s.c.scrape.TargetsActive() {
		for _, t := range targets {
			if metric != "" {
				if md, ok := t.GetMetadata(metric); ok {
					add(md.MetricFamily, metadata.Metadata{Type: md.Type, Help: md.Help, Unit: md.Unit})
				}
				continue
			}
			for _, md := range t.ListMetadata() {
				add(md.MetricFamily, metadata.Metadata{Type: md.Type, Help: md.Help, Unit: md.Unit})
			}
		}
	}
	names := make([]string, 0, len(sets))
	for name := range sets {
		names = append(names, name)
	}
	slices.Sort(names)
	res := map[string][]metadata.Metadata{}
	for _, name := range names {
		if limit >= 0 && len(res) >= limit {
			break
		}
		list := []metadata.Metadata{}
		for md := range sets[name] {
			list = append(list, md)
		}
		res[name] = list
	}
	return apiResult{data: res}
}

// alertJSON is an active alert.
type alertJSON struct {
	Labels          labels.Labels `json:"labels"`
	Annotations     labels.Labels `json:"annotations"`
	State           string        `json:"state"`
	ActiveAt        *time.Time    `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time    `json:"keepFiringSince,omitempty"`
	Value           string        `json:"value"`
}

func toAlertJSON(in []*rules.Alert) []*alertJSON {
	out := make([]*alertJSON, len(in))
	for i, a := range in {
		out[i] = &alertJSON{
			Labels:      a.Labels,
			Annotations: a.Annotations,
			State:       a.State.String(),
			ActiveAt:    &a.ActiveAt,
			Value:       strconv.FormatFloat(a.Value, 'e', -1, 64),
		}
		if !a.KeepFiringSince.IsZero() {
			out[i].KeepFiringSince = &a.KeepFiringSince
		}
	}
	return out
}

func (a *api) alerts(*http.Request) apiResult {
	alerts := []*alertJSON{}
	for _, rule := range a.s.c.rules.AlertingRules() {
		alerts = append(alerts, toAlertJSON(rule.ActiveAlerts())...)
	}
	return apiResult{data: struct {
		Alerts []*alertJSON `json:"alerts"`
	}{alerts}}
}

type ruleGroupJSON struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []any     `json:"rules"`
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

type alertingRuleJSON struct {
	State          string           `json:"state"`
	Name           string           `json:"name"`
	Query          string           `json:"query"`
	Duration       float64          `json:"duration"`
	KeepFiringFor  float64          `json:"keepFiringFor"`
	Labels         labels.Labels    `json:"labels"`
	Annotations    labels.Labels    `json:"annotations"`
	Alerts         []*alertJSON     `json:"alerts"`
	Health         rules.RuleHealth `json:"health"`
	LastError      string           `json:"lastError,omitempty"`
	EvaluationTime float64          `json:"evaluationTime"`
	LastEvaluation time.Time        `json:"lastEvaluation"`
	Type           string           `json:"type"`
}

type recordingRuleJSON struct {
	Name           string           `json:"name"`
	Query          string           `json:"query"`
	Labels         labels.Labels    `json:"labels"`
	Health         rules.RuleHealth `json:"health"`
	LastError      string           `json:"lastError,omitempty"`
	EvaluationTime float64          `json:"evaluationTime"`
	LastEvaluation time.Time        `json:"lastEvaluation"`
	Type           string           `json:"type"`
}

func (a *api) rules(r *http.Request) apiResult {
	if err := r.ParseForm(); err != nil {
		return apiResult{err: &apiError{errorBadData, fmt.Errorf("error parsing form values: %w", err)}}
	}
	set := func(vs []string) map[string]bool {
		m := make(map[string]bool, len(vs))
		for _, v := range vs {
			m[v] = true
		}
		return m
	}
	names, groups, files := set(r.Form["rule_name[]"]), set(r.Form["rule_group[]"]), set(r.Form["file[]"])
	typ := strings.ToLower(r.Form.Get("type"))
	if typ != "" && typ != "alert" && typ != "record" {
		return badParam(fmt.Errorf("not supported value %q", typ), "type")
	}
	sets, err := a.parseMatchers(r)
	if err != nil {
		return apiResult{err: &apiError{errorBadData, err}}
	}
	excludeAlerts := false
	if v := r.Form.Get("exclude_alerts"); v != "" {
		if excludeAlerts, err = strconv.ParseBool(v); err != nil {
			return badParam(err, "exclude_alerts")
		}
	}
	out := []*ruleGroupJSON{}
	for _, g := range a.s.c.rules.RuleGroups() {
		if (len(groups) > 0 && !groups[g.Name()]) || (len(files) > 0 && !files[g.File()]) {
			continue
		}
		rg := &ruleGroupJSON{
			Name: g.Name(), File: g.File(), Rules: []any{}, Interval: g.Interval().Seconds(), Limit: g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(), LastEvaluation: g.GetLastEvaluation(),
		}
		for _, rr := range g.Rules(sets...) {
			if len(names) > 0 && !names[rr.Name()] {
				continue
			}
			lastErr := ""
			if err := rr.LastError(); err != nil {
				lastErr = err.Error()
			}
			switch rule := rr.(type) {
			case *rules.AlertingRule:
				if typ == "record" {
					continue
				}
				var alerts []*alertJSON
				if !excludeAlerts {
					alerts = toAlertJSON(rule.ActiveAlerts())
				}
				rg.Rules = append(rg.Rules, alertingRuleJSON{
					State: rule.State().String(), Name: rule.Name(), Query: rule.Query().String(),
					Duration: rule.HoldDuration().Seconds(), KeepFiringFor: rule.KeepFiringFor().Seconds(),
					Labels: rule.Labels(), Annotations: rule.Annotations(), Alerts: alerts,
					Health: rule.Health(), LastError: lastErr, EvaluationTime: rule.GetEvaluationDuration().Seconds(),
					LastEvaluation: rule.GetEvaluationTimestamp(), Type: "alerting",
				})
			case *rules.RecordingRule:
				if typ == "alert" {
					continue
				}
				rg.Rules = append(rg.Rules, recordingRuleJSON{
					Name: rule.Name(), Query: rule.Query().String(), Labels: rule.Labels(),
					Health: rule.Health(), LastError: lastErr, EvaluationTime: rule.GetEvaluationDuration().Seconds(),
					LastEvaluation: rule.GetEvaluationTimestamp(), Type: "recording",
				})
			}
		}
		if len(rg.Rules) > 0 {
			out = append(out, rg)
		}
	}
	return apiResult{data: struct {
		Groups []*ruleGroupJSON `json:"groups"`
	}{out}}
}

type targetJSON struct {
	DiscoveredLabels   labels.Labels       `json:"discoveredLabels"`
	Labels             labels.Labels       `json:"labels"`
	ScrapePool         string              `json:"scrapePool"`
	ScrapeURL          string              `json:"scrapeUrl"`
	GlobalURL          string              `json:"globalUrl"`
	LastError          string              `json:"lastError"`
	LastScrape         time.Time           `json:"lastScrape"`
	LastScrapeDuration float64             `json:"lastScrapeDuration"`
	Health             scrape.TargetHealth `json:"health"`
	ScrapeInterval     string              `json:"scrapeInterval"`
	ScrapeTimeout      string              `json:"scrapeTimeout"`
}

type droppedTargetJSON struct {
	DiscoveredLabels labels.Labels `json:"discoveredLabels"`
	ScrapePool       string        `json:"scrapePool"`
}

type targetDiscovery struct {
	ActiveTargets       []*targetJSON        `json:"activeTargets"`
	DroppedTargets      []*droppedTargetJSON `json:"droppedTargets"`
	DroppedTargetCounts map[string]int       `json:"droppedTargetCounts"`
}

func sortedPools(m map[string][]*scrape.Target) []string {
	pools := make([]string, 0, len(m))
	for p := range m {
		pools = append(pools, p)
	}
	slices.Sort(pools)
	return pools
}

func (a *api) targets(r *http.Request) apiResult {
	pool := r.URL.Query().Get("scrapePool")
	state := strings.ToLower(r.URL.Query().Get("state"))
	showActive := state == "" || state == "any" || state == "active"
	showDropped := state == "" || state == "any" || state == "dropped"
	res := &targetDiscovery{ActiveTargets: []*targetJSON{}, DroppedTargets: []*droppedTargetJSON{}}
	b := labels.NewBuilder(labels.EmptyLabels())
	sm := a.s.c.scrape
	if showActive {
		active := sm.TargetsActive()
		for _, p := range sortedPools(active) {
			if pool != "" && p != pool {
				continue
			}
			for _, t := range active[p] {
				res.ActiveTargets = append(res.ActiveTargets, a.s.targetJSON(p, t, b))
			}
		}
	}
	if showDropped {
		res.DroppedTargetCounts = sm.TargetsDroppedCounts()
		dropped := sm.TargetsDropped()
		for _, p := range sortedPools(dropped) {
			if pool != "" && p != pool {
				continue
			}
			for _, t := range dropped[p] {
				res.DroppedTargets = append(res.DroppedTargets, &droppedTargetJSON{DiscoveredLabels: t.DiscoveredLabels(b), ScrapePool: p})
			}
		}
	}
	return apiResult{data: res}
}

func (s *server) targetJSON(pool string, t *scrape.Target, b *labels.Builder) *targetJSON {
	lastErr := ""
	if err := t.LastError(); err != nil {
		lastErr = err.Error()
	}
	return &targetJSON{
		DiscoveredLabels:   t.DiscoveredLabels(b),
		Labels:             t.Labels(b),
		ScrapePool:         pool,
		ScrapeURL:          t.URL().String(),
		GlobalURL:          globalURL(t.URL(), s.extURL, s.listen).String(),
		LastError:          lastErr,
		LastScrape:         t.LastScrape(),
		LastScrapeDuration: t.LastScrapeDuration().Seconds(),
		Health:             t.Health(),
		ScrapeInterval:     t.GetValue(model.ScrapeIntervalLabel),
		ScrapeTimeout:      t.GetValue(model.ScrapeTimeoutLabel),
	}
}

// globalURL is Prometheus' rule for a target's URL as seen from outside: a localhost target
// gets the external host (and, when it is this server, the external scheme and port).
func globalURL(in *url.URL, ext *url.URL, listen string) *url.URL {
	u := *in
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, ""
	}
	if host != "127.0.0.1" && host != "localhost" && host != "::1" {
		return &u
	}
	_, ownPort, err := net.SplitHostPort(listen)
	if err == nil && port == ownPort {
		u.Scheme, u.Host = ext.Scheme, ext.Host
		return &u
	}
	u.Host = ext.Hostname()
	if port != "" {
		u.Host = net.JoinHostPort(u.Host, port)
	}
	return &u
}

func (a *api) alertmanagers(*http.Request) apiResult {
	type am struct {
		URL string `json:"url"`
	}
	active, dropped := []am{}, []am{}
	for _, u := range a.s.c.notifier.Alertmanagers() {
		active = append(active, am{u.String()})
	}
	for _, u := range a.s.c.notifier.DroppedAlertmanagers() {
		dropped = append(dropped, am{u.String()})
	}
	return apiResult{data: struct {
		Active  []am `json:"activeAlertmanagers"`
		Dropped []am `json:"droppedAlertmanagers"`
	}{active, dropped}}
}

// buildInfo is Prometheus' /api/v1/status/buildinfo data; Version is that of the embedded
// Prometheus packages.
type buildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

func (a *api) buildinfo(*http.Request) apiResult {
	bi := buildInfo{Version: "unknown", GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/prometheus/prometheus" {
				bi.Version = strings.TrimPrefix(d.Version, "v")
			}
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				bi.Revision = s.Value
			}
		}
	}
	return apiResult{data: bi}
}

func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time value for '%s': %w", name, err)
	}
	return t, nil
}

// parseTime accepts Unix seconds (with fractions) or RFC 3339, as Prometheus does.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		sec, ns := math.Modf(t)
		ns = math.Round(ns*1000) / 1000
		return time.Unix(int64(sec), int64(ns*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	switch s {
	case minTime.Format(time.RFC3339Nano):
		return minTime, nil
	case maxTime.Format(time.RFC3339Nano):
		return maxTime, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration accepts seconds (with fractions) or a Prometheus duration such as 1m30s.
func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ts := d * float64(time.Second)
		if math.IsNaN(ts) || ts >= float64(math.MaxInt64) || ts < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ts), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}
