// Package descriptor reads Occopus-compatible infrastructure descriptors and node definition
// files into a typed, validated model, reporting every problem at once with file:line:column,
// the key path, the bad value and what is allowed.
//
// It resolves !yaml_import and !text_import tags relative to the importing file (nested
// imports relative to their own file), YAML anchors, aliases and merge keys, computes
// dependency levels, applies Occopus' scaling rules, and knows each resource type's allowed
// keys. It does not render templates (package template) or talk to clouds (package cloud).
//
// # Compatibility
//
// Every file Occopus accepts is accepted, with these deliberate differences: scaling.max
// below scaling.min is an error (Occopus silently raises max), scaling.min may be written as
// 0, and user_id is required (Occopus' schema check only warns, but its compiler then fails
// without it). skyfleet's extensions are a documented superset: scaling.step, cooldown,
// scale_out_cooldown, scale_in_cooldown, drain_timeout and target; health_check.interval;
// the resource types local and sim; the contextualisation type process. Dependency ends may
// also be written as node names instead of aliases.
//
// # Hostile input
//
// Parsing is bounded: files larger than MaxFileSize, nesting deeper than MaxDepth, aliases
// expanding to more than MaxAliasNodes nodes, and more than MaxImports imports (or imports
// nested deeper than MaxImportDepth) are refused with an error naming the limit. Alias
// expansion is measured before anything is expanded, so an alias bomb costs microseconds.
// Imports read only regular files. Descriptors received over the API are parsed with imports
// disabled, so that they cannot read the server's files.
package descriptor
