// Package template renders Occopus-compatible Jinja2 templates: the contextualisation
// (cloud-init user data, docker env and command, process files), the resource section and
// health-check URLs of one instance, with the Occopus context (node_id, name, type, infra_id,
// infra_name, user_id, variables, the node definition's sections, ip) and functions (getip,
// getprivip, getipall, cut, cmd) and the b64encode filter.
//
// Rendering follows Occopus: an undefined variable renders empty. Unlike Occopus, each
// undefined variable is reported as a Warning naming it (for example
// `undefined variable "variables.port"`), and with Options.Strict it is an error instead.
// The engine is github.com/nikolalohinski/gonja/v2; gonja itself cannot say which names were
// undefined, so every parsed template is rewritten once (see rewrite.go) so that name,
// attribute and item look-ups go through functions that know the variable's path and line.
//
// A Renderer is safe for concurrent use and caches parsed templates (bounded in count and
// bytes). Rendering is bounded so that a hostile or broken template cannot hang the caller,
// crash it or exhaust its memory: the output size and every intermediate string
// (Options.MaxOutput), the wall-clock time, observed at every output write, loop iteration and
// macro call (Options.Timeout), the items of one loop, range() lengths, recursion depth
// (measured on the Go stack), nesting of brackets, blocks and unary operators and the length
// of one tag (checked on the tokens before parsing), string and list repetition and concatenation, the width arguments
// of padding filters and string methods, str.format widths, and the growth of indent and
// replace. A panic inside gonja becomes an error. Not bounded: the time one builtin filter
// takes on a string within these limits, and cmd(), which has its own timeout. Templates
// cannot read files: include, import, from and extends are not available, as with Occopus'
// loader-less jinja2.Template.
//
// Where gonja and Jinja2 differ on what real Occopus descriptor sets contain, the template
// is adapted to Jinja2's reading: a key named like an operator after a dot (x.in) is read as
// an item (keywords.go). Where Occopus' YAML round trip shapes the result, so does this
// package: a value that spans lines, rendered into a dumped #cloud-config mapping, is folded
// as in Occopus (fold.go); getip and friends with an undefined name answer from every
// instance (InfraLookup); puppet_solo nodes see puppet.* (puppet.go). docs/compatibility.md
// lists the tutorials these come from.
//
// This package does not decide when to render or where the result goes (package engine and
// the providers do), and it does not parse descriptors (package descriptor).
package template
