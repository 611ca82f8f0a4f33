package descriptor

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem found in a descriptor: where it is, which key it concerns, the bad
// value and what is allowed instead.
type Error struct {
	// Pos is the position of the offending key or value.
	Pos Pos
	// Path is the key path from the document root, such as "nodes[2].scaling.max" or
	// "node_def:app[0].resource.image_id". It is empty for problems with the file as a whole.
	Path string
	// Value is the offending value as written (empty when there is none, e.g. a missing key).
	Value string
	// Msg says what is wrong, including the bad value and what is allowed.
	Msg string
}

// Error formats the problem as "file:line:col: path: msg".
func (e *Error) Error() string {
	if e.Path == "" {
		return e.Pos.String() + ": " + e.Msg
	}
	return e.Pos.String() + ": " + e.Path + ": " + e.Msg
}

// Errors is every problem found in one parse, sorted by position. It is returned as an error
// so that callers can print it at once, or range over it to show each problem separately.
type Errors []*Error

// Error returns all errors, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortErrors orders errors by file, line, column, path and message, and drops exact
// duplicates (which aliases can produce when a bad subtree is referenced twice).
func sortErrors(es Errors) Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return *a == *b })
}

// Warning is something that is valid but probably not what the author meant, or a feature
// skyfleet recognises but does not implement.
type Warning struct {
	Pos  Pos
	Path string
	Msg  string
}

// String formats the warning as "file:line:col: warning: path: msg".
func (w Warning) String() string {
	if w.Path == "" {
		return w.Pos.String() + ": warning: " + w.Msg
	}
	return w.Pos.String() + ": warning: " + w.Path + ": " + w.Msg
}

// diag collects errors and warnings during one parse.
type diag struct {
	errs  Errors
	warns []Warning
}

func (d *diag) errorf(pos Pos, path, value, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: pos, Path: path, Value: value, Msg: fmt.Sprintf(format, args...)})
}

func (d *diag) warnf(pos Pos, path, format string, args ...any) {
	d.warns = append(d.warns, Warning{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// result returns the sorted warnings and, when there were errors, the sorted Errors.
func (d *diag) result() ([]Warning, error) {
	slices.SortStableFunc(d.warns, func(a, b Warning) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Path, b.Path),
		)
	})
	d.warns = slices.Compact(d.warns)
	if len(d.errs) == 0 {
		return d.warns, nil
	}
	return d.warns, sortErrors(d.errs)
}
