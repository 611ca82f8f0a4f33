package template

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Default limits applied when the corresponding Options field is zero.
const (
	// DefaultTimeout bounds one render.
	DefaultTimeout = 10 * time.Second
	// DefaultCmdTimeout bounds one cmd() call.
	DefaultCmdTimeout = 10 * time.Second
	// DefaultMaxOutput bounds the rendered text and intermediate strings, in bytes.
	DefaultMaxOutput = 16 << 20
	// DefaultCacheSize is how many parsed templates a Renderer keeps.
	DefaultCacheSize = 512
	// maxRange bounds the length of range(...).
	maxRange = 100_000
	// maxLoopItems bounds the items of one for loop.
	maxLoopItems = 100_000
	// maxList bounds lists built by templates (repetition, concatenation).
	maxList = 1_000_000
)

// NodeAddress is one instance of a node as getip/getprivip/getipall see it.
type NodeAddress struct {
	// Address is the instance's first (public or only) address.
	Address string
	// Private is the instance's private address; getprivip falls back to Address when empty.
	Private string
}

// Lookup resolves other nodes' instances (in creation order: first = oldest) for getip etc.
// Implementations must be safe for concurrent use when the Renderer is used concurrently.
type Lookup interface {
	Instances(node string) []NodeAddress
}

// InfraLookup is a Lookup that can also list every instance of the infrastructure, in
// creation order (oldest first, across nodes). getip, getprivip and getipall use it when
// their node name is undefined or empty, where Occopus matches every instance; without it
// such a call fails.
type InfraLookup interface {
	Lookup
	AllInstances() []NodeAddress
}

// Context is what a template sees: the Occopus template context of one instance.
type Context struct {
	InfraID, InfraName, UserID, NodeID, Name, Type string
	// Variables are the node's merged variables ({{variables.foo}}).
	Variables map[string]any
	// Sections: node-definition sections and node description fields exposed at top level
	// (resource, contextualisation, health_check, config_management, scaling, filter, ...).
	Sections map[string]any
	// IP is the rendered instance's own address (health-check urls use {{ip}}); empty otherwise,
	// in which case ip is undefined.
	IP string
	// Lookup answers getip, getprivip and getipall; nil means no other node has instances.
	Lookup Lookup
}

// Options configure a Renderer.
type Options struct {
	// Strict makes an undefined variable an error instead of a warning.
	Strict bool
	// AllowCmd enables cmd(), which runs a command on the rendering host.
	AllowCmd bool
	// CmdTimeout bounds each cmd() call (default DefaultCmdTimeout).
	CmdTimeout time.Duration
	// Timeout bounds one render (default DefaultTimeout). It is observed at every output
	// write, loop iteration and macro call.
	Timeout time.Duration
	// MaxOutput bounds the rendered text and every intermediate string, in bytes
	// (default DefaultMaxOutput).
	MaxOutput int
	// CacheSize bounds the parsed-template cache (default DefaultCacheSize).
	CacheSize int
}

// Warning is a problem that did not stop rendering, such as an undefined variable.
type Warning struct {
	// Template is the name given to Render (for RenderValue, with the value's path appended).
	Template string
	// Line is the 1-based line in the template source (0 when unknown).
	Line int
	// Msg says what is wrong, e.g. `undefined variable "variables.port"`.
	Msg string
}

// String formats the warning as "template NAME line N: MSG".
func (w Warning) String() string {
	if w.Line > 0 {
		return fmt.Sprintf("template %s line %d: %s", w.Template, w.Line, w.Msg)
	}
	return fmt.Sprintf("template %s: %s", w.Template, w.Msg)
}

// NoInstanceError is returned (wrapped) when getip or getprivip names a node that has no
// instance yet. Callers use it to explain what to do (wait, or pass an address).
type NoInstanceError struct {
	Func string
	Node string
}

// Error formats the error as Occopus users read it: getip('db'): node "db" has no instance yet.
func (e *NoInstanceError) Error() string {
	return fmt.Sprintf("%s('%s'): node %q has no instance yet", e.Func, e.Node, e.Node)
}

// Renderer renders templates with the Occopus context. It is safe for concurrent use.
type Renderer struct {
	opts  Options
	env   *exec.Environment
	cfg   *config.Config
	cache *parseCache
}

// New returns a Renderer with opts (zero limits take their defaults).
func New(opts Options) *Renderer {
	if opts.CmdTimeout <= 0 {
		opts.CmdTimeout = DefaultCmdTimeout
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	return &Renderer{
		opts:  opts,
		env:   newEnvironment(opts.MaxOutput),
		cfg:   config.New(),
		cache: newParseCache(opts.CacheSize),
	}
}

// Render renders the template src. name identifies it in warnings and errors (for example a
// file name or "node_def:app/contextualisation"). A syntax error names the template, line and
// column; a render error names the template and line.
func (r *Renderer) Render(name, src string, c *Context) (string, []Warning, error) {
	out, warns, _, err := r.render(name, src, c, false)
	return out, warns, err
}

// render is Render; with fold, {{ }} outputs that span lines are replaced by placeholders,
// returned with their folded text (see run.out).
func (r *Renderer) render(name, src string, c *Context, fold bool) (string, []Warning, []string, error) {
	t, err := r.parse(name, src)
	if err != nil {
		return "", nil, nil, err
	}
	if c == nil {
		c = &Context{}
	}
	ru := newRun(r, name)
	ru.fold = fold
	out := &limitWriter{max: r.opts.MaxOutput, run: ru}
	if err := ru.execute(t, out, c); err != nil {
		return "", ru.warnings, nil, err
	}
	return out.buf.String(), ru.warnings, ru.folded, nil
}

// RenderValue renders every string inside v (maps, lists, nested), returning a new value;
// other scalars and map keys are kept as they are. Unlike Render, a string keeps its trailing
// newline (Occopus renders these sections as a whole YAML document, where a value's final
// newline is not the document's), and a string without template syntax is returned as it
// is. Warnings name the value's path after name (for example "resource.server_name"); maps
// are walked in key order, so warnings and the first error are reproducible.
func (r *Renderer) RenderValue(name string, v any, c *Context) (any, []Warning, error) {
	var warns []Warning
	out, err := r.renderValue(name, v, c, &warns)
	return out, warns, err
}

func (r *Renderer) renderValue(path string, v any, c *Context, warns *[]Warning) (any, error) {
	switch v := v.(type) {
	case string:
		return r.renderString(path, v, c, warns)
	case map[string]any:
		out := make(map[string]any, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			re, err := r.renderValue(path+"."+k, v[k], c, warns)
			if err != nil {
				return nil, err
			}
			out[k] = re
		}
		return out, nil
	case map[any]any:
		keys := slices.Collect(maps.Keys(v))
		slices.SortFunc(keys, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		out := make(map[any]any, len(v))
		for _, k := range keys {
			re, err := r.renderValue(fmt.Sprintf("%s.%v", path, k), v[k], c, warns)
			if err != nil {
				return nil, err
			}
			out[k] = re
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			re, err := r.renderValue(fmt.Sprintf("%s[%d]", path, i), e, c, warns)
			if err != nil {
				return nil, err
			}
			out[i] = re
		}
		return out, nil
	case []string:
		out := make([]string, len(v))
		for i, e := range v {
			s, err := r.renderString(fmt.Sprintf("%s[%d]", path, i), e, c, warns)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	default:
		return v, nil
	}
}

// renderString renders one string value of RenderValue, keeping its trailing newline.
func (r *Renderer) renderString(path, s string, c *Context, warns *[]Warning) (string, error) {
	if !strings.Contains(s, "{{") && !strings.Contains(s, "{%") && !strings.Contains(s, "{#") {
		return s, nil
	}
	out, w, err := r.Render(path, s, c)
	*warns = append(*warns, w...)
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(s, "\n") {
		out += "\n"
	}
	return out, nil
}

// parse returns the rewritten, parsed template for src, from the cache when possible.
func (r *Renderer) parse(name, src string) (*exec.Template, error) {
	if t, ok := r.cache.get(src); ok {
		return t, nil
	}
	if len(src) > r.opts.MaxOutput {
		return nil, fmt.Errorf("template %s: source is %d bytes, over the %d-byte limit", name, len(src), r.opts.MaxOutput)
	}
	key := src
	src = quoteOperatorAttrs(src)
	if err := checkNesting(name, src, r.cfg); err != nil {
		return nil, err
	}
	t, err := parseTemplate(name, src, r.cfg, r.env)
	if err != nil {
		return nil, err
	}
	r.cache.put(key, t)
	return t, nil
}

func parseTemplate(name, src string, cfg *config.Config, env *exec.Environment) (t *exec.Template, err error) {
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("template %s: cannot parse: %v", name, p)
		}
	}()
	t, err = exec.NewTemplate(rootID, cfg, &sourceLoader{src: src}, env)
	if err != nil {
		msg, line, col := "", 0, 0
		var se *parser.SyntaxError
		if errors.As(err, &se) {
			msg, line, col = strings.TrimSuffix(se.Message, "."), se.Line, se.Column
			if se.Raw != "" {
				msg += fmt.Sprintf(" (near %q)", se.Raw)
			}
		} else {
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			msg = strings.TrimSuffix(err.Error(), ".")
		}
		if line == 0 {
			// gonja reports some errors (often at the end of a tag) without a position;
			// parse again with our own parser to see where it stopped.
			p := parser.NewParser(rootID, tokens.LexAll(src, cfg), cfg, &sourceLoader{src: src}, env.ControlStructures)
			if _, perr := p.Parse(); perr != nil {
				if tok := p.Current(); tok != nil {
					line, col = tok.Line, tok.Col
				}
			}
		}
		for _, tag := range []string{"include", "import", "from", "extends"} {
			if strings.Contains(msg, "ControlStructure '"+tag+"' not found") {
				msg = fmt.Sprintf("{%% %s %%} is not available: templates cannot load other templates", tag)
			}
		}
		if line > 0 {
			return nil, fmt.Errorf("template %s line %d col %d: syntax error: %s", name, line, col, msg)
		}
		return nil, fmt.Errorf("template %s line %d: syntax error at the end of the template: %s", name, strings.Count(strings.TrimRight(src, "\n"), "\n")+1, msg)
	}
	rewriteTemplate(t.Root())
	return t, nil
}

// maxNesting bounds brackets, blocks and chained unary operators in a template: gonja's
// parser recurses on each, and a stack overflow cannot be recovered from.
const maxNesting = 100

// maxTagTokens bounds the tokens of one {{ }} or {% %} tag. Chains such as a.b.c..., x|f|g...
// or 1~2~3... parse into syntax trees as deep as they are long, which gonja evaluates
// recursively (and concatenates quadratically).
const maxTagTokens = 10_000

// blockOpeners are the tags that always take an end tag.
var blockOpeners = map[string]bool{"if": true, "for": true, "macro": true, "call": true, "filter": true, "with": true, "autoescape": true, "block": true, "trans": true}

// checkNesting refuses templates nested deeper than maxNesting before gonja parses them.
func checkNesting(name, src string, cfg *config.Config) error {
	s := tokens.LexAll(src, cfg)
	brackets, blocks, unary, inTag := 0, 0, 0, 0
	afterBlockBegin := false
	for !s.End() {
		tok := s.Next()
		switch tok.Type {
		case tokens.VariableBegin, tokens.BlockBegin:
			inTag = 1
		case tokens.VariableEnd, tokens.BlockEnd:
			inTag = 0
		default:
			if inTag > 0 {
				inTag++
			}
		}
		if inTag > maxTagTokens {
			return fmt.Errorf("template %s line %d: a tag longer than %d tokens", name, tok.Line, maxTagTokens)
		}
		switch tok.Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			brackets++
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			brackets = max(brackets-1, 0)
		case tokens.Name:
			if afterBlockBegin {
				if blockOpeners[tok.Val] {
					blocks++
				} else if strings.HasPrefix(tok.Val, "end") {
					blocks = max(blocks-1, 0)
				}
			}
		}
		switch tok.Type {
		case tokens.Not, tokens.Subtraction, tokens.Addition:
			unary++
		default:
			unary = 0
		}
		afterBlockBegin = tok.Type == tokens.BlockBegin
		if brackets > maxNesting || blocks > maxNesting || unary > maxNesting {
			return fmt.Errorf("template %s line %d: nested deeper than %d levels", name, tok.Line, maxNesting)
		}
	}
	return nil
}

// rootID is the identifier of every parsed template inside gonja; names are only used in
// our own messages, so that the cache can be keyed by source alone.
const rootID = "template"

// sourceLoader serves one template source and refuses every other name, so that templates
// cannot read files (include, import and extends are not registered either).
type sourceLoader struct{ src string }

func (l *sourceLoader) Read(path string) (io.Reader, error) {
	if path != rootID {
		return nil, fmt.Errorf("templates cannot load %q: include, import and extends are not available", path)
	}
	return strings.NewReader(l.src), nil
}

func (l *sourceLoader) Resolve(path string) (string, error) { return path, nil }

func (l *sourceLoader) Inherit(string) (loaders.Loader, error) {
	return nil, errors.New("templates cannot load other templates")
}

// newEnvironment builds the gonja environment shared by all renders: builtin filters, tests
// and methods, the control structures that need no loader, and bounded replacements for
// range and lipsum. Per-render values (the context and our functions) are added by run.
func newEnvironment(maxOutput int) *exec.Environment {
	ctx := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
	ctx.Set("range", rangeFunc)
	ctx.Set("lipsum", lipsumFunc)

	filters := exec.NewFilterSet(map[string]exec.FilterFunction{})
	filters.Update(builtins.Filters)
	_ = filters.Register("b64encode", filterB64encode)
	_ = filters.Register("b64decode", filterB64decode)
	for name, grow := range map[string]func(in *exec.Value, va *exec.VarArgs) int{"indent": indentGrowth, "replace": replaceGrowth} {
		if orig, ok := builtins.Filters.Get(name); ok {
			_ = filters.Replace(name, preChecked(name, orig, grow, maxOutput))
		}
	}

	allowed := map[string]parser.ControlStructureParser{}
	for _, n := range []string{"autoescape", "block", "filter", "for", "if", "macro", "raw", "set", "with", "do", "break", "continue", "trans", "call"} {
		if p, ok := builtins.ControlStructures.Get(n); ok {
			allowed[n] = p
		}
	}
	return &exec.Environment{
		Context:           ctx,
		Filters:           filters,
		Tests:             builtins.Tests,
		ControlStructures: exec.NewControlStructureSet(allowed),
		Methods:           builtins.Methods,
	}
}

// run is the state of one render: the warnings so far, the first error raised by one of our
// functions, and the limits.
type run struct {
	r        *Renderer
	name     string
	deadline time.Time
	warnings []Warning
	warned   map[int][]string // line -> paths already reported
	fail     error
	ticks    int
	// fold is set while rendering a mapping dumped as YAML (CloudInit): a {{ }} whose
	// string output spans lines writes a placeholder instead, and folded keeps, per
	// placeholder, the output folded as Occopus' YAML round trip folds it (see foldLines).
	fold   bool
	folded []string
}

func newRun(r *Renderer, name string) *run {
	return &run{r: r, name: name, deadline: time.Now().Add(r.opts.Timeout), warned: map[int][]string{}}
}

// lineError is an error at a known line of the template.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

// record keeps the first failure of one of our functions (at line, 0 when unknown): it
// fails the render even when gonja would let the error value pass (through default(), for
// instance), as an exception would in Jinja2.
func (ru *run) record(line int, err error) {
	if ru.fail == nil {
		ru.fail = &lineError{line: line, err: err}
	}
}

// failAt records err and returns it as a gonja value.
func (ru *run) failAt(line int, err error) *exec.Value {
	ru.record(line, err)
	return exec.AsValue(err)
}

var (
	atLine     = regexp.MustCompile(`at line (\d+)`)
	goFuncName = regexp.MustCompile(`invalid call to function '[^' ]*/[^' ]*': `)
)

func (ru *run) execute(t *exec.Template, w io.Writer, c *Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("template %s: render failed: %v", ru.name, p)
		}
	}()
	execErr := t.Execute(w, exec.NewContext(ru.data(c)))
	if ru.fail != nil {
		var le *lineError
		line := 0
		if errors.As(ru.fail, &le) && le.line > 0 {
			line = le.line
		} else if execErr != nil {
			line = lastLine(execErr.Error())
		}
		if line > 0 {
			return fmt.Errorf("template %s line %d: %w", ru.name, line, ru.fail)
		}
		return fmt.Errorf("template %s: %w", ru.name, ru.fail)
	}
	if execErr != nil {
		msg := execErr.Error()
		if line := lastLine(msg); line > 0 {
			return fmt.Errorf("template %s line %d: %s", ru.name, line, cleanMessage(msg))
		}
		return fmt.Errorf("template %s: %s", ru.name, cleanMessage(msg))
	}
	return nil
}

// cleanMessage keeps what a template author can act on from a gonja error: gonja wraps the
// cause in layers that print syntax-tree nodes ("call([...], map[])") and generic phrases.
func cleanMessage(msg string) string {
	// Functions are called through the rewrite, so gonja names them by their Go symbol.
	msg = goFuncName.ReplaceAllString(msg, "")
	var keep []string
	for _, part := range strings.Split(msg, ": ") {
		p := strings.TrimSpace(part)
		switch {
		case p == "",
			strings.Contains(p, "map["),
			strings.Contains(p, "<Token"),
			strings.HasPrefix(p, "call("),
			strings.HasPrefix(p, "filtered_expression("),
			strings.Contains(p, "ControlStructure("),
			strings.HasPrefix(strings.ToLower(p), "unable to "):
			continue
		}
		keep = append(keep, p)
	}
	if len(keep) == 0 {
		return msg
	}
	return strings.Join(keep, ": ")
}

func lastLine(msg string) int {
	m := atLine.FindAllStringSubmatch(msg, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// undefined reports path (undefined at line) once and returns what the template sees:
// nothing, or in strict mode an error.
func (ru *run) undefined(path string, line int) *exec.Value {
	msg := fmt.Sprintf("undefined variable %q", path)
	if ru.r.opts.Strict {
		return ru.failAt(line, errors.New(msg))
	}
	for _, p := range ru.warned[line] {
		if p == path || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return exec.AsValue(nil)
		}
	}
	ru.warned[line] = append(ru.warned[line], path)
	ru.warnings = append(ru.warnings, Warning{Template: ru.name, Line: line, Msg: msg})
	return exec.AsValue(nil)
}

// tick runs at the start of every loop iteration and macro call.
func (ru *run) tick(_ *exec.Evaluator, va *exec.VarArgs) *exec.Value {
	line := 0
	if len(va.Args) > 0 {
		line = va.Args[0].Integer()
	}
	ru.ticks++
	if time.Now().After(ru.deadline) {
		return ru.failAt(line, fmt.Errorf("render took longer than %s", ru.r.opts.Timeout))
	}
	// Recursion (a macro calling itself, loop(...) in a recursive for) grows the Go stack by
	// some dozens of frames per level; a stack overflow would kill the process, so stop well
	// before. Checking every few ticks is enough since one tick adds at most one level.
	if ru.ticks%16 == 0 && tooDeep() {
		return ru.failAt(line, errors.New("loops and macro calls nested too deeply"))
	}
	return exec.AsValue("")
}

// maxStack is the Go stack depth, in frames, at which a render stops: some 500 levels of
// recursion (a level costs about ten frames), about as deep as Jinja2 goes under Python's
// default recursion limit.
const maxStack = 5000

// tooDeep reports whether the calling goroutine's stack has more than maxStack frames,
// without allocating a buffer for them.
func tooDeep() bool {
	var pc [1]uintptr
	return runtime.Callers(maxStack, pc[:]) > 0
}

// limitWriter collects the output, failing once it passes max bytes or the deadline.
type limitWriter struct {
	buf bytes.Buffer
	max int
	run *run
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.max {
		err := fmt.Errorf("output exceeds %d bytes", w.max)
		w.run.record(0, err)
		return 0, err
	}
	if time.Now().After(w.run.deadline) {
		err := fmt.Errorf("render took longer than %s", w.run.r.opts.Timeout)
		w.run.record(0, err)
		return 0, err
	}
	return w.buf.Write(p)
}
