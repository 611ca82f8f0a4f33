package template

import (
	"reflect"
	"strconv"
	"unsafe"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Names of the per-render functions that rewritten templates call. The prefix keeps them out
// of the way of user variables; a template that calls them directly gains nothing.
const (
	fnName  = "__sf_name"  // (name, line): look a name up, reporting it when undefined
	fnAttr  = "__sf_attr"  // (target, attr, path, line): target.attr
	fnItem  = "__sf_item"  // (target, key, path, line): target[key]
	fnFunc  = "__sf_func"  // (name, line): the function called by name(...)
	fnTick  = "__sf_tick"  // (line): once per loop iteration and macro call; bounds time and depth
	fnMul   = "__sf_mul"   // (left, right): a * b with string repetition bounded
	fnBound = "__sf_bound" // (value): fails when a string or list result is too large
	fnWidth = "__sf_width" // (value): fails when a width or count argument is too large
	fnIter  = "__sf_iter"  // (value): fails when a for loop would iterate over too many items
	fnSpec  = "__sf_spec"  // (value): fails when a str.format string asks for a huge width
	fnOut   = "__sf_out"   // (value): what a {{ }} writes; see run.out
)

// boundedFilters are filters whose output can be much larger than their input; their
// results are checked against the output limit.
var boundedFilters = map[string]bool{
	"center": true, "indent": true, "wordwrap": true, "truncate": true, "format": true,
	"batch": true, "slice": true, "join": true, "replace": true, "list": true, "string": true,
	"tojson": true, "pprint": true, "urlize": true, "xmlattr": true, "b64encode": true,
}

// rewriter turns a parsed gonja template into one whose look-ups, loops and size-sensitive
// operations call the per-render functions above. gonja evaluates an undefined name to nil
// without telling anyone; after the rewrite every name, attribute and item look-up knows its
// source path and line, which is how undefined variables become warnings (or strict errors).
// Positions that test for definedness (`x is defined`, `x | default(...)`) are left alone,
// so the idioms that guard against undefined variables stay silent.
type rewriter struct {
	seen map[*nodes.Wrapper]bool
}

func rewriteTemplate(t *nodes.Template) {
	rw := &rewriter{seen: map[*nodes.Wrapper]bool{}}
	rw.nodeList(t.Nodes)
	for _, m := range t.Macros {
		rw.macro(m)
	}
}

func (rw *rewriter) nodeList(ns []nodes.Node) {
	for _, n := range ns {
		rw.node(n)
	}
}

func (rw *rewriter) node(n nodes.Node) {
	switch n := n.(type) {
	case *nodes.Output:
		n.Expression = call(n.Start, fnOut, rw.expr(n.Expression))
		n.Condition = rw.expr(n.Condition)
		if n.Alternative != nil {
			n.Alternative = call(n.Start, fnOut, rw.expr(n.Alternative))
		}
	case *nodes.ControlStructureBlock:
		rw.control(n.ControlStructure)
	case *nodes.Wrapper:
		rw.wrapper(n, false)
	}
}

// wrapper rewrites a block body once (macros are reachable twice: from the tree and from
// Template.Macros). With tick, the body first calls the tick function, so every loop
// iteration and macro call checks the render's deadline and nesting depth.
func (rw *rewriter) wrapper(w *nodes.Wrapper, tick bool) {
	if w == nil || rw.seen[w] {
		return
	}
	rw.seen[w] = true
	rw.nodeList(w.Nodes)
	if tick {
		pos := w.Position()
		if pos == nil {
			pos = &tokens.Token{}
		}
		out := &nodes.Output{Start: pos, End: pos, Expression: call(pos, fnTick, intLit(pos, pos.Line))}
		w.Nodes = append([]nodes.Node{out}, w.Nodes...)
	}
}

func (rw *rewriter) macro(m *nodes.Macro) {
	if m == nil {
		return
	}
	for _, p := range m.Kwargs {
		p.Value = rw.expr(p.Value)
	}
	rw.wrapper(m.Wrapper, true)
}

func (rw *rewriter) control(cs nodes.ControlStructure) {
	switch c := cs.(type) {
	case *controlStructures.IfControlStructure:
		for i := range c.Conditions {
			c.Conditions[i] = rw.expr(c.Conditions[i])
		}
		for _, w := range c.Wrappers {
			rw.wrapper(w, false)
		}
	case *controlStructures.ForControlStructure:
		// gonja materialises a loop's items (with a scope each) before running the body, so
		// the length is checked before the loop starts.
		if c.ObjectEvaluator != nil {
			c.ObjectEvaluator = call(c.ObjectEvaluator.Position(), fnIter, rw.expr(c.ObjectEvaluator))
		}
		c.IfCondition = rw.expr(c.IfCondition)
		rw.wrapper(c.BodyWrapper, true)
		rw.wrapper(c.EmptyWrapper, false)
	case *controlStructures.MacroControlStructure:
		rw.macro(c.Macro)
	case *controlStructures.DoControlStructure:
		c.Expression = rw.expr(c.Expression)
	case *controlStructures.CallControlStructure:
		if c.Call != nil {
			rw.callArgs(c.Call)
		}
		rw.wrapper(c.Body, true)
	case *controlStructures.AutoescapeControlStructure:
		rw.wrapper(c.Wrapper, false)
	case *controlStructures.TransControlStructure:
		for k, e := range c.Variables {
			c.Variables[k] = rw.expr(e)
		}
		rw.wrapper(c.SingularBody, false)
		rw.wrapper(c.PluralBody, false)
	case *controlStructures.SetControlStructure:
		// The set tag keeps its parts unexported; the target is an assignment target and
		// is left alone.
		for _, f := range []string{"expression", "condition", "alternative"} {
			if p := fieldPtr[nodes.Expression](c, f); p != nil {
				*p = rw.expr(*p)
			}
		}
		if p := fieldPtr[*nodes.Wrapper](c, "body"); p != nil {
			rw.wrapper(*p, false)
		}
	case *controlStructures.WithControlStructure:
		if p := fieldPtr[map[string]nodes.Expression](c, "pairs"); p != nil {
			for k, e := range *p {
				(*p)[k] = rw.expr(e)
			}
		}
		if p := fieldPtr[*nodes.Wrapper](c, "wrapper"); p != nil {
			rw.wrapper(*p, false)
		}
	case *controlStructures.FilterControlStructure:
		if p := fieldPtr[[]*nodes.FilterCall](c, "filterChain"); p != nil {
			for _, f := range *p {
				rw.filterArgs(f)
			}
		}
		if p := fieldPtr[*nodes.Wrapper](c, "bodyWrapper"); p != nil {
			rw.wrapper(*p, false)
		}
	}
}

// fieldPtr returns a pointer to the unexported field name of the struct *s when it exists
// with type T, or nil (so a gonja upgrade that renames a field only loses warnings there;
// the tests would show it).
func fieldPtr[T any](s any, name string) *T {
	v := reflect.ValueOf(s)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() || f.Type() != reflect.TypeFor[T]() {
		return nil
	}
	return (*T)(unsafe.Pointer(f.UnsafeAddr()))
}

func (rw *rewriter) expr(e nodes.Expression) nodes.Expression {
	switch n := e.(type) {
	case nil:
		return nil
	case *nodes.Name:
		if n.Name.Val == "none" {
			// Jinja2 spells None also in lower case; gonja only knows None and nil.
			return &nodes.None{Location: n.Name}
		}
		return call(n.Name, fnName, strLit(n.Name, n.Name.Val), intLit(n.Name, n.Name.Line))
	case *nodes.GetAttribute:
		var key nodes.Expression
		if n.Attribute != "" {
			key = strLit(n.Location, n.Attribute)
		} else {
			key = intLit(n.Location, n.Index)
		}
		return call(n.Location, fnAttr, rw.expr(n.Node), key, strLit(n.Location, pathOf(n)), intLit(n.Location, line(n)))
	case *nodes.GetItem:
		return call(n.Location, fnItem, rw.expr(n.Node), rw.expr(n.Arg), strLit(n.Location, pathOf(n)), intLit(n.Location, line(n)))
	case *nodes.GetSlice:
		n.Node = rw.expr(n.Node)
		n.Start = rw.expr(n.Start)
		n.End = rw.expr(n.End)
		n.Step = rw.expr(n.Step)
		return n
	case *nodes.Call:
		if rw.callFunc(n) {
			return call(n.Location, fnBound, n)
		}
		return n
	case *nodes.FilteredExpression:
		guarded := len(n.Filters) > 0 && (n.Filters[0].Name == "default" || n.Filters[0].Name == "d")
		if !guarded {
			n.Expression = rw.expr(n.Expression)
		}
		bounded := false
		for _, f := range n.Filters {
			rw.filterArgs(f)
			bounded = bounded || boundedFilters[f.Name]
		}
		if bounded {
			return call(n.Position(), fnBound, n)
		}
		return n
	case *nodes.TestExpression:
		if n.Test == nil || (n.Test.Name != "defined" && n.Test.Name != "undefined") {
			n.Expression = rw.expr(n.Expression)
		}
		if n.Test != nil {
			for i := range n.Test.Args {
				n.Test.Args[i] = rw.expr(n.Test.Args[i])
			}
			for k, a := range n.Test.Kwargs {
				n.Test.Kwargs[k] = rw.expr(a)
			}
		}
		return n
	case *nodes.BinaryExpression:
		n.Left = rw.expr(n.Left)
		n.Right = rw.expr(n.Right)
		if n.Operator == nil || n.Operator.Token == nil {
			return n
		}
		switch n.Operator.Token.Type {
		case tokens.Multiply:
			return call(n.Operator.Token, fnMul, n.Left, n.Right)
		case tokens.Addition, tokens.Tilde:
			return call(n.Operator.Token, fnBound, n)
		}
		return n
	case *nodes.UnaryExpression:
		n.Term = rw.expr(n.Term)
		return n
	case *nodes.Negation:
		n.Term = rw.expr(n.Term)
		return n
	case *nodes.List:
		for i := range n.Val {
			n.Val[i] = rw.expr(n.Val[i])
		}
		return n
	case *nodes.Tuple:
		for i := range n.Val {
			n.Val[i] = rw.expr(n.Val[i])
		}
		return n
	case *nodes.Dict:
		for _, p := range n.Pairs {
			p.Key = rw.expr(p.Key)
			p.Value = rw.expr(p.Value)
		}
		return n
	case *nodes.Pair:
		n.Key = rw.expr(n.Key)
		n.Value = rw.expr(n.Value)
		return n
	default:
		return e
	}
}

// callFunc rewrites a call. A method call (x.items()) keeps its attribute node, because
// gonja dispatches methods on it and on Call.Parent; a call by name (getip('db')) goes
// through fnFunc so that an unknown function gets a clear message. It reports whether the
// call is a method call, whose result the caller bounds.
func (rw *rewriter) callFunc(c *nodes.Call) bool {
	method := false
	switch f := c.Func.(type) {
	case *nodes.Name:
		c.Func = call(f.Name, fnFunc, strLit(f.Name, f.Name.Val), intLit(f.Name, f.Name.Line))
	case *nodes.GetAttribute:
		inner := rw.expr(f.Node)
		if f.Attribute == "format" || f.Attribute == "format_map" {
			// str.format pads before anything could check its result.
			inner = call(f.Location, fnSpec, inner)
		}
		if c.Parent == f.Node {
			c.Parent = inner
		}
		f.Node = inner
		method = true
	default:
		c.Func = rw.expr(f)
	}
	rw.callArgs(c)
	return method
}

func (rw *rewriter) callArgs(c *nodes.Call) {
	widths := false
	if g, ok := c.Func.(*nodes.GetAttribute); ok && widthMethods[g.Attribute] {
		widths = true
	}
	rw.args(c.Args, c.Kwargs, widths)
}

func (rw *rewriter) filterArgs(f *nodes.FilterCall) {
	rw.args(f.Args, f.Kwargs, widthFilters[f.Name])
}

// args rewrites call arguments; with widths, numeric ones are checked against maxWidth.
func (rw *rewriter) args(args []nodes.Expression, kwargs map[string]nodes.Expression, widths bool) {
	for i, a := range args {
		args[i] = rw.expr(a)
		if widths {
			args[i] = call(a.Position(), fnWidth, args[i])
		}
	}
	for k, a := range kwargs {
		kwargs[k] = rw.expr(a)
		if widths {
			kwargs[k] = call(a.Position(), fnWidth, kwargs[k])
		}
	}
}

// pathOf spells a look-up the way a user wrote it: variables.db.port, hosts[0], x['a-b'].
// Only the last dozen steps of a long chain are spelt out, so that spelling every node of a
// chain stays linear.
func pathOf(n nodes.Node) string {
	return pathOfDepth(n, 12)
}

func pathOfDepth(n nodes.Node, depth int) string {
	if depth == 0 {
		return "..."
	}
	switch n := n.(type) {
	case *nodes.Name:
		return n.Name.Val
	case *nodes.GetAttribute:
		if n.Attribute != "" {
			return pathOfDepth(n.Node, depth-1) + "." + n.Attribute
		}
		return pathOfDepth(n.Node, depth-1) + "." + strconv.Itoa(n.Index)
	case *nodes.GetItem:
		switch a := n.Arg.(type) {
		case *nodes.String:
			return pathOfDepth(n.Node, depth-1) + "['" + a.Val + "']"
		case *nodes.Integer:
			return pathOfDepth(n.Node, depth-1) + "[" + strconv.Itoa(a.Val) + "]"
		case *nodes.Name:
			return pathOfDepth(n.Node, depth-1) + "[" + a.Name.Val + "]"
		}
		return pathOfDepth(n.Node, depth-1) + "[...]"
	case *nodes.Call:
		return pathOfDepth(n.Func, depth-1) + "(...)"
	case nil:
		return "?"
	default:
		return "(...)"
	}
}

func line(n nodes.Node) int {
	if p := n.Position(); p != nil {
		return p.Line
	}
	return 0
}

func call(pos *tokens.Token, fn string, args ...nodes.Expression) *nodes.Call {
	if pos == nil {
		pos = &tokens.Token{}
	}
	name := &tokens.Token{Type: tokens.Name, Val: fn, Line: pos.Line, Col: pos.Col, Pos: pos.Pos}
	return &nodes.Call{Location: pos, Func: &nodes.Name{Name: name}, Args: args, Kwargs: map[string]nodes.Expression{}}
}

func strLit(pos *tokens.Token, s string) *nodes.String {
	if pos == nil {
		pos = &tokens.Token{}
	}
	return &nodes.String{Location: &tokens.Token{Type: tokens.String, Val: s, Line: pos.Line, Col: pos.Col}, Val: s}
}

func intLit(pos *tokens.Token, i int) *nodes.Integer {
	if pos == nil {
		pos = &tokens.Token{}
	}
	return &nodes.Integer{Location: &tokens.Token{Type: tokens.Integer, Val: strconv.Itoa(i), Line: pos.Line, Col: pos.Col}, Val: i}
}
