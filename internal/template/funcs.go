package template

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/builtins"
	gexec "github.com/nikolalohinski/gonja/v2/exec"
)

// maxWidth bounds width and count arguments of padding filters and string methods.
const maxWidth = 1 << 16

// widthFilters are filters whose numeric arguments are widths or counts.
var widthFilters = map[string]bool{"center": true, "wordwrap": true, "truncate": true, "batch": true, "slice": true, "indent": true}

// widthMethods are string methods whose numeric arguments are widths.
var widthMethods = map[string]bool{"center": true, "ljust": true, "rjust": true, "zfill": true, "expandtabs": true}

// data builds the per-render context: the Occopus constants, the sections, and our functions.
func (ru *run) data(c *Context) map[string]any {
	m := make(map[string]any, len(c.Sections)+24)
	for k, v := range c.Sections {
		m[k] = deepCopy(v)
	}
	vars, _ := deepCopy(c.Variables).(map[string]any)
	if vars == nil {
		vars = map[string]any{}
	}
	m["variables"] = vars
	m["node_id"] = c.NodeID
	m["name"] = c.Name
	m["type"] = c.Type
	m["infra_id"] = c.InfraID
	m["infra_name"] = c.InfraName
	m["user_id"] = c.UserID
	if c.IP != "" {
		m["ip"] = c.IP
	}
	lookup := c.Lookup
	m["getip"] = func(va *gexec.VarArgs) (any, error) { return ru.getip("getip", lookup, va) }
	m["getprivip"] = func(va *gexec.VarArgs) (any, error) { return ru.getip("getprivip", lookup, va) }
	m["getipall"] = func(va *gexec.VarArgs) (any, error) { return ru.getipall(lookup, va) }
	m["cut"] = ru.cut
	m["cmd"] = ru.cmd
	m[fnName] = ru.lookupName
	m[fnAttr] = ru.lookupAttr
	m[fnItem] = ru.lookupItem
	m[fnFunc] = ru.lookupFunc
	m[fnTick] = ru.tick
	m[fnMul] = ru.mul
	m[fnBound] = ru.bound
	m[fnWidth] = ru.width
	m[fnIter] = ru.iter
	m[fnSpec] = ru.spec
	m[fnOut] = ru.out
	return m
}

// deepCopy copies maps and lists so that a template cannot change the caller's values (gonja's
// dict and list methods such as update and append mutate in place), and concurrent renders
// never share a map.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	case []string:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = e
		}
		return out
	default:
		return v
	}
}

func argLine(va *gexec.VarArgs, i int) int {
	if len(va.Args) > i {
		return va.Args[i].Integer()
	}
	return 0
}

// lookupName is a rewritten name: (name, line).
func (ru *run) lookupName(e *gexec.Evaluator, va *gexec.VarArgs) *gexec.Value {
	name := va.Args[0].String()
	v, ok := e.Environment.Context.Get(name)
	if !ok {
		return ru.undefined(name, argLine(va, 1))
	}
	return gexec.ToValue(v)
}

// lookupFunc is the function of a call by name: (name, line).
func (ru *run) lookupFunc(e *gexec.Evaluator, va *gexec.VarArgs) *gexec.Value {
	name := va.Args[0].String()
	v, ok := e.Environment.Context.Get(name)
	if !ok || v == nil {
		return ru.failAt(argLine(va, 1), fmt.Errorf("%s() is not a function here (functions: getip, getprivip, getipall, cut, cmd, range, dict, namespace, cycler, joiner, lipsum)", name))
	}
	fn := gexec.ToValue(v)
	if !fn.IsCallable() {
		return ru.failAt(argLine(va, 1), fmt.Errorf("%s() cannot be called: %s is not a function", name, name))
	}
	return fn
}

// lookupAttr is a rewritten target.attr (or target.0): (target, attr, path, line), following
// gonja's evaluation (attribute, then item) but reporting what is missing.
func (ru *run) lookupAttr(_ *gexec.Evaluator, va *gexec.VarArgs) *gexec.Value {
	target, key, path, line := va.Args[0], va.Args[1], va.Args[2].String(), argLine(va, 3)
	if target.IsNil() {
		return ru.undefined(path, line)
	}
	var (
		v     *gexec.Value
		found bool
	)
	if key.IsString() {
		v, found = target.GetAttribute(key.String())
		if !found {
			v, found = target.GetItem(key.String())
		}
	} else {
		v, found = target.GetItem(key.Integer())
	}
	if !found {
		if v != nil && v.IsError() {
			return ru.failAt(line, fmt.Errorf("%s: %s", path, v.Error()))
		}
		return ru.undefined(path, line)
	}
	return v
}

// lookupItem is a rewritten target[key]: (target, key, path, line).
func (ru *run) lookupItem(_ *gexec.Evaluator, va *gexec.VarArgs) *gexec.Value {
	target, key, path, line := va.Args[0], va.Args[1], va.Args[2].String(), argLine(va, 3)
	if target.IsNil() {
		return ru.undefined(path, line)
	}
	var (
		v     *gexec.Value
		found bool
	)
	switch {
	case key.IsString():
		v, found = target.GetItem(key.String())
		if !found {
			v, found = target.GetAttribute(key.String())
		}
	case key.IsInteger():
		v, found = target.GetItem(key.Integer())
	default:
		return ru.failAt(line, fmt.Errorf("%s: the key %s is neither a string nor an integer", path, key.String()))
	}
	if !found {
		if v != nil && v.IsError() {
			return ru.failAt(line, fmt.Errorf("%s: %s", path, v.Error()))
		}
		return ru.undefined(path, line)
	}
	return v
}

func oneString(fn string, va *gexec.VarArgs) (string, error) {
	if len(va.Args) != 1 || len(va.KwArgs) != 0 {
		return "", fmt.Errorf("%s() takes exactly one argument, the node name (got %d)", fn, len(va.Args)+len(va.KwArgs))
	}
	if !va.Args[0].IsString() {
		return "", fmt.Errorf("%s(): the node name must be a string, not %s", fn, va.Args[0].String())
	}
	return va.Args[0].String(), nil
}

// noName tells whether a getip-like call got a single argument that Jinja2 treats as false
// (undefined, none or ""). Occopus then looks the instances up with no name filter, which
// matches every instance of the infrastructure, and getip answers with the first one. The
// cqueue-cluster tutorial depends on it: its worker calls getip(master), an undefined name,
// and reaches the master because the master's is the only instance when the first worker is
// created.
func noName(va *gexec.VarArgs) bool {
	if len(va.Args) != 1 || len(va.KwArgs) != 0 {
		return false
	}
	a := va.Args[0]
	return a.IsNil() || (a.IsString() && a.String() == "")
}

// everyInstance answers a getip-like call without a node name: every instance of the
// infrastructure, when the Lookup can list them (InfraLookup), with a warning saying so.
func (ru *run) everyInstance(fn string, l Lookup) []NodeAddress {
	ru.warnings = append(ru.warnings, Warning{Template: ru.name, Msg: fmt.Sprintf(
		"%s() was given an undefined or empty node name; like Occopus, it answers from every instance of the infrastructure", fn)})
	if il, ok := l.(InfraLookup); ok {
		return il.AllInstances()
	}
	return nil
}

func (ru *run) getip(fn string, l Lookup, va *gexec.VarArgs) (any, error) {
	if noName(va) {
		insts := ru.everyInstance(fn, l)
		if len(insts) == 0 {
			err := fmt.Errorf("%s(): the node name is undefined or empty, and the infrastructure has no instance yet to answer with", fn)
			ru.record(0, err)
			return nil, err
		}
		if fn == "getprivip" && insts[0].Private != "" {
			return insts[0].Private, nil
		}
		return insts[0].Address, nil
	}
	node, err := oneString(fn, va)
	if err != nil {
		ru.record(0, err)
		return nil, err
	}
	var insts []NodeAddress
	if l != nil {
		insts = l.Instances(node)
	}
	if len(insts) == 0 {
		err := &NoInstanceError{Func: fn, Node: node}
		ru.record(0, err)
		return nil, err
	}
	if fn == "getprivip" && insts[0].Private != "" {
		return insts[0].Private, nil
	}
	return insts[0].Address, nil
}

func (ru *run) getipall(l Lookup, va *gexec.VarArgs) (any, error) {
	var insts []NodeAddress
	if noName(va) {
		insts = ru.everyInstance("getipall", l)
	} else {
		node, err := oneString("getipall", va)
		if err != nil {
			ru.record(0, err)
			return nil, err
		}
		if l != nil {
			insts = l.Instances(node)
		}
	}
	out := make([]any, 0, len(insts))
	for _, in := range insts {
		out = append(out, in.Address)
	}
	return out, nil
}

// cut is Python's s[start:end] on code points: negative indices count from the end and
// out-of-range indices are clamped. end may be omitted or none.
func (ru *run) cut(va *gexec.VarArgs) (any, error) {
	if len(va.Args) < 2 || len(va.Args) > 3 || len(va.KwArgs) != 0 {
		err := fmt.Errorf("cut() takes (string, start, end), got %d arguments", len(va.Args)+len(va.KwArgs))
		ru.record(0, err)
		return nil, err
	}
	s := []rune(va.Args[0].String())
	if !va.Args[1].IsInteger() {
		err := fmt.Errorf("cut(): start must be an integer, not %q", va.Args[1].String())
		ru.record(0, err)
		return nil, err
	}
	start, end := va.Args[1].Integer(), len(s)
	if len(va.Args) == 3 && !va.Args[2].IsNil() {
		if !va.Args[2].IsInteger() {
			err := fmt.Errorf("cut(): end must be an integer, not %q", va.Args[2].String())
			ru.record(0, err)
			return nil, err
		}
		end = va.Args[2].Integer()
	}
	start, end = clampSlice(len(s), start), clampSlice(len(s), end)
	if start >= end {
		return "", nil
	}
	return string(s[start:end]), nil
}

func clampSlice(n, i int) int {
	if i < 0 {
		i += n
		if i < 0 {
			return 0
		}
	}
	if i > n {
		return n
	}
	return i
}

// ErrCmdDisabled is the error of cmd() when Options.AllowCmd is false.
var ErrCmdDisabled = errors.New("cmd() is disabled; start the server with --allow-template-cmd to enable it")

// cmd runs a command on the rendering host, split on whitespace (no shell), and returns its
// standard output without one trailing newline.
func (ru *run) cmd(va *gexec.VarArgs) (any, error) {
	if !ru.r.opts.AllowCmd {
		ru.record(0, ErrCmdDisabled)
		return nil, ErrCmdDisabled
	}
	if len(va.Args) != 1 || len(va.KwArgs) != 0 {
		err := errors.New("cmd() takes exactly one argument, the command line")
		ru.record(0, err)
		return nil, err
	}
	line := va.Args[0].String()
	argv := strings.Fields(line)
	if len(argv) == 0 {
		err := errors.New("cmd(''): empty command")
		ru.record(0, err)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), ru.r.opts.CmdTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	stdout := &capWriter{max: ru.r.opts.MaxOutput}
	stderr := &capWriter{max: 2048}
	c.Stdout, c.Stderr = stdout, stderr
	err := c.Run()
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("cmd('%s'): timed out after %s", line, ru.r.opts.CmdTimeout)
	case stdout.over:
		err = fmt.Errorf("cmd('%s'): output exceeds %d bytes", line, ru.r.opts.MaxOutput)
	case err != nil:
		msg := strings.TrimSpace(stderr.buf.String())
		if msg != "" {
			err = fmt.Errorf("cmd('%s'): %w: %s", line, err, msg)
		} else {
			err = fmt.Errorf("cmd('%s'): %w", line, err)
		}
	}
	if err != nil {
		ru.record(0, err)
		return nil, err
	}
	return strings.TrimSuffix(stdout.buf.String(), "\n"), nil
}

// capWriter keeps at most max bytes and remembers whether more came.
type capWriter struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); len(p) > room {
		w.over = true
		if room > 0 {
			w.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return w.buf.Write(p)
}

// mul is a * b: numbers multiply, a string (or list) times an integer repeats, within the
// output limit.
func (ru *run) mul(a, b *gexec.Value) *gexec.Value {
	switch {
	case a.IsString() && b.IsInteger():
		return ru.repeat(a.String(), b.Integer())
	case a.IsInteger() && b.IsString():
		return ru.repeat(b.String(), a.Integer())
	case a.IsList() && b.IsInteger(), a.IsInteger() && b.IsList():
		list, n := a, b.Integer()
		if b.IsList() {
			list, n = b, a.Integer()
		}
		if n <= 0 || list.Len() == 0 {
			return gexec.AsValue([]any{})
		}
		if list.Len() > maxList/n {
			return ru.failAt(0, fmt.Errorf("list repetition would have over %d items", maxList))
		}
		out := make([]any, 0, list.Len()*n)
		for range n {
			for i := 0; i < list.Len(); i++ {
				out = append(out, list.Index(i).Interface())
			}
		}
		return gexec.AsValue(out)
	case a.IsString():
		return ru.repeat(a.String(), b.Integer())
	case a.IsFloat() || b.IsFloat():
		return gexec.AsValue(a.Float() * b.Float())
	default:
		return gexec.AsValue(a.Integer() * b.Integer())
	}
}

func (ru *run) repeat(s string, n int) *gexec.Value {
	if n <= 0 || s == "" {
		return gexec.AsValue("")
	}
	if len(s) > ru.r.opts.MaxOutput/n {
		return ru.failAt(0, fmt.Errorf("string repetition would exceed %d bytes", ru.r.opts.MaxOutput))
	}
	return gexec.AsValue(strings.Repeat(s, n))
}

// bound passes v through unless it is a string over the output limit or a list over
// maxList items.
func (ru *run) bound(v *gexec.Value) *gexec.Value {
	switch {
	case v.IsError():
		return v
	case v.IsString() && len(v.String()) > ru.r.opts.MaxOutput:
		return ru.failAt(0, fmt.Errorf("a string exceeds %d bytes", ru.r.opts.MaxOutput))
	case v.IsList() && v.Len() > maxList:
		return ru.failAt(0, fmt.Errorf("a list exceeds %d items", maxList))
	}
	return v
}

// out is what every {{ }} writes. Outside fold mode it is the value itself. In fold mode (a
// mapping dumped as YAML), a string that spans lines is replaced by a placeholder: written
// into the dumped YAML as is, its later lines would fall outside the scalar they belong to.
// Occopus dumps such scalars in a quoted style, where YAML folds the inserted line breaks
// when the rendered text is read back; CloudInit puts the folded text in place of the
// placeholder once the rendered YAML is parsed.
func (ru *run) out(v *gexec.Value) *gexec.Value {
	if !ru.fold || v.IsError() || !v.IsString() || !strings.ContainsAny(v.String(), "\n\r") {
		return v
	}
	ru.folded = append(ru.folded, foldLines(v.String()))
	return gexec.AsValue(placeholder(len(ru.folded) - 1))
}

// iter passes a loop's iterable through unless it has more than maxLoopItems items.
func (ru *run) iter(v *gexec.Value) *gexec.Value {
	if !v.IsError() && v.IsIterable() && v.Len() > maxLoopItems {
		return ru.failAt(0, fmt.Errorf("a loop over %d items (the limit is %d)", v.Len(), maxLoopItems))
	}
	return v
}

// formatSpec finds the format specification of a str.format replacement field.
var formatSpec = regexp.MustCompile(`\{[^{}]*:([^{}]*)\}`)

var digits = regexp.MustCompile(`\d+`)

// spec passes a str.format receiver through unless a field asks for a width or precision
// over maxWidth.
func (ru *run) spec(v *gexec.Value) *gexec.Value {
	if !v.IsString() {
		return v
	}
	for _, m := range formatSpec.FindAllStringSubmatch(v.String(), -1) {
		for _, d := range digits.FindAllString(m[1], -1) {
			if n, err := strconv.Atoi(d); err != nil || n > maxWidth {
				return ru.failAt(0, fmt.Errorf("format field {:%s} asks for a width or precision over the limit of %d", m[1], maxWidth))
			}
		}
	}
	return v
}

// width passes an integer argument through unless it is over maxWidth.
func (ru *run) width(v *gexec.Value) *gexec.Value {
	if v.IsNumber() && (v.Float() > maxWidth || v.Float() < -maxWidth) {
		return ru.failAt(0, fmt.Errorf("width or count %s is over the limit of %d", v.String(), maxWidth))
	}
	return v
}

// rangeFunc replaces gonja's range (which feeds a channel from a goroutine that leaks when
// a loop stops early) with a bounded list.
func rangeFunc(va *gexec.VarArgs) ([]int, error) {
	if len(va.KwArgs) != 0 || len(va.Args) < 1 || len(va.Args) > 3 {
		return nil, errors.New("range() takes [start,] stop[, step]")
	}
	ints := make([]int, len(va.Args))
	for i, a := range va.Args {
		if !a.IsInteger() {
			return nil, fmt.Errorf("range(): %s is not an integer", a.String())
		}
		ints[i] = a.Integer()
	}
	start, stop, step := 0, 0, 1
	switch len(ints) {
	case 1:
		stop = ints[0]
	case 2:
		start, stop = ints[0], ints[1]
	case 3:
		start, stop, step = ints[0], ints[1], ints[2]
	}
	if step == 0 {
		return nil, errors.New("range(): step must not be zero")
	}
	n := (float64(stop) - float64(start)) / float64(step)
	if n > maxRange {
		return nil, fmt.Errorf("range() would have over %d items", maxRange)
	}
	var out []int
	if step > 0 {
		for i := start; i < stop; i += step {
			out = append(out, i)
		}
	} else {
		for i := start; i > stop; i += step {
			out = append(out, i)
		}
	}
	return out, nil
}

// lipsumFunc bounds gonja's lipsum(n, html, min, max).
func lipsumFunc(e *gexec.Evaluator, va *gexec.VarArgs) *gexec.Value {
	for _, a := range va.Args {
		if a.IsNumber() && a.Float() > 1000 {
			return gexec.AsValue(errors.New("lipsum(): arguments over 1000 are not allowed"))
		}
	}
	for _, a := range va.KwArgs {
		if a.IsNumber() && a.Float() > 1000 {
			return gexec.AsValue(errors.New("lipsum(): arguments over 1000 are not allowed"))
		}
	}
	orig, _ := builtins.GlobalFunctions.Get("lipsum")
	fn, ok := orig.(func(*gexec.Evaluator, *gexec.VarArgs) *gexec.Value)
	if !ok {
		return gexec.AsValue(errors.New("lipsum() is not available"))
	}
	return fn(e, va)
}

func filterB64encode(_ *gexec.Evaluator, in *gexec.Value, _ *gexec.VarArgs) *gexec.Value {
	if in.IsError() {
		return in
	}
	return gexec.AsValue(base64.StdEncoding.EncodeToString([]byte(in.String())))
}

func filterB64decode(_ *gexec.Evaluator, in *gexec.Value, _ *gexec.VarArgs) *gexec.Value {
	if in.IsError() {
		return in
	}
	b, err := base64.StdEncoding.DecodeString(in.String())
	if err != nil {
		return gexec.AsValue(fmt.Errorf("b64decode: %w", err))
	}
	return gexec.AsValue(string(b))
}

// preChecked refuses to run filter orig when grow estimates its output over max bytes, so
// that the output is never built.
func preChecked(name string, orig gexec.FilterFunction, grow func(*gexec.Value, *gexec.VarArgs) int, max int) gexec.FilterFunction {
	return func(e *gexec.Evaluator, in *gexec.Value, va *gexec.VarArgs) *gexec.Value {
		if !in.IsError() && grow(in, va) > max {
			return gexec.AsValue(fmt.Errorf("%s: the result would exceed %d bytes", name, max))
		}
		return orig(e, in, va)
	}
}

// indentGrowth estimates the size of s|indent(width): every line gains the indentation.
func indentGrowth(in *gexec.Value, va *gexec.VarArgs) int {
	s := in.String()
	w := 4
	var arg *gexec.Value
	if len(va.Args) > 0 {
		arg = va.Args[0]
	} else if a, ok := va.KwArgs["width"]; ok {
		arg = a
	}
	if arg != nil {
		if arg.IsString() {
			w = len(arg.String())
		} else {
			w = min(max(arg.Integer(), 0), maxWidth)
		}
	}
	return len(s) + (strings.Count(s, "\n")+1)*w
}

// replaceGrowth estimates the size of s|replace(old, new[, count]).
func replaceGrowth(in *gexec.Value, va *gexec.VarArgs) int {
	if len(va.Args) < 2 {
		return 0
	}
	s, old, repl := in.String(), va.Args[0].String(), va.Args[1].String()
	n := len(s) + 1
	if old != "" {
		n = strings.Count(s, old)
	}
	if len(va.Args) > 2 && va.Args[2].IsInteger() && va.Args[2].Integer() >= 0 {
		n = min(n, va.Args[2].Integer())
	}
	return len(s) + n*(len(repl)-len(old))
}
