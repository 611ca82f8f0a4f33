// Package decode holds what the cloud providers share when they decode a rendered
// resource or contextualisation section strictly, by hand: Problems, which walks a
// section's keys in sorted order, reads the plain ones (strings, lists of strings), and
// gathers every problem to report them all at once as "resource.KEY: message"; readers for
// the loosely typed values YAML and JSON decoders produce (TypeName, Number, Integer,
// Bool); and Occopus' default VM name (VMName).
//
// It is not a schema language and not a decoder of whole sections: each provider keeps its
// own table of keys, its own switch over them, its own checks and its own wording. decode
// only makes the providers' messages read alike and keeps them from drifting apart.
package decode
