// Package auth loads Occopus-style auth_data.yaml credential files and selects the
// credential section that applies to a rendered resource section, with Occopus' matching
// rule: the keys of an entry other than `auth_data` form a filter that must be a sub-mapping
// of the resource section, and exactly one entry may match.
//
// It also finds the file (explicit flag, environment, the Occopus default locations), warns
// when the file is readable by other users, and scrubs credential values out of text such as
// SDK error messages (Redact).
//
// It is not a secret store: it never writes credentials, never caches them beyond the
// parsed file, and it never puts a credential value into an error or a log line. It knows
// nothing about any particular cloud; providers read the keys they need from the returned
// cloud.Credentials.
package auth
