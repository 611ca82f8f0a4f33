// Package descriptor reads Occopus-compatible infrastructure descriptors and node definition
// files into a typed, validated model, reporting every problem at once with file:line:column,
// the key path, the bad value and what is allowed.
//
// It resolves !yaml_import and !text_import tags relative to the importing file, computes
// dependency levels, applies Occopus' scaling rules, and knows each resource type's allowed
// keys. It does not render templates (package template) or talk to clouds (package cloud).
package descriptor
