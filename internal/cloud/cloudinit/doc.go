// Package cloudinit checks rendered cloud-init user data before a provider sends it to a
// cloud: a `#cloud-config` document must parse as a YAML mapping (as Occopus requires), the
// text must be a format cloud-init understands, and it must fit the target cloud's size
// limit (EC2Limit, NovaLimit).
//
// It does not render templates (package template does, per instance) and it does not
// validate cloud-config modules or keys: cloud-init versions differ too much for that, and a
// wrong key is only ignored by cloud-init, while a YAML error or an oversized payload makes
// the whole boot configuration disappear silently.
package cloudinit
