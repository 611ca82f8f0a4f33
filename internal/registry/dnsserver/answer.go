package dnsserver

import (
	"net"
	"strings"

	mdns "github.com/miekg/dns"
)

// Buffer sizes of UDP answers.
const (
	// minUDPSize is what a client without EDNS0 accepts.
	minUDPSize = 512
	// maxUDPSize is the largest UDP answer the server sends and advertises (the DNS flag
	// day 2020 value, which avoids IP fragmentation).
	maxUDPSize = 1232
)

// answer builds the response to req. tcp tells the transport, which bounds the size.
func (s *Server) answer(req *mdns.Msg, tcp bool) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Compress = true
	m.RecursionAvailable = false
	size := minUDPSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(minUDPSize, min(int(opt.UDPSize()), maxUDPSize))
		m.SetEdns0(maxUDPSize, false)
	}
	if tcp {
		size = mdns.MaxMsgSize
	}
	rcode := s.resolve(req, m)
	m.Rcode = rcode
	m.Truncate(size)
	if s.queries != nil {
		s.queries.WithLabelValues(mdns.RcodeToString[rcode]).Inc()
	}
	return m
}

// resolve fills m's sections for req's question and returns the response code.
func (s *Server) resolve(req *mdns.Msg, m *mdns.Msg) int {
	if req.Opcode != mdns.OpcodeQuery {
		return mdns.RcodeNotImplemented
	}
	if len(req.Question) != 1 {
		return mdns.RcodeFormatError
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if !mdns.IsSubDomain(Zone, name) || (q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY) {
		return mdns.RcodeRefused
	}
	z := s.zone.Load()
	if z == nil {
		return mdns.RcodeServerFailure
	}
	m.Authoritative = true
	labels := mdns.SplitDomainName(strings.TrimSuffix(strings.TrimSuffix(name, Zone), "."))
	qt := q.Qtype
	want := func(t uint16) bool { return qt == t || qt == mdns.TypeANY }

	nxdomain := func() int {
		m.Ns = append(m.Ns, s.soa(z, Zone))
		return mdns.RcodeNameError
	}
	finish := func() int {
		if len(m.Answer) == 0 {
			m.Ns = append(m.Ns, s.soa(z, Zone)) // NODATA
		}
		return mdns.RcodeSuccess
	}

	switch len(labels) {
	case 0: // the apex
		if want(mdns.TypeSOA) {
			m.Answer = append(m.Answer, s.soa(z, q.Name))
		}
		return finish()
	case 1: // <infra>
		if z.infras[labels[0]] == nil {
			return nxdomain()
		}
		return finish()
	}

	// Everything deeper ends in <node>.<infra>.
	n := len(labels)
	infra := z.infras[labels[n-1]]
	if infra == nil {
		return nxdomain()
	}
	node := infra.nodes[labels[n-2]]
	if node == nil {
		return nxdomain()
	}
	base := labels[n-2] + "." + labels[n-1] + "." + Zone

	switch {
	case n == 2: // <node>.<infra>
		for _, in := range node.insts {
			s.addresses(m, q.Name, in, want)
		}
		if want(mdns.TypeSRV) {
			s.srv(m, q.Name, base, node)
		}
		return finish()
	case n == 3 && isProto(labels[0]): // _tcp.<node>.<infra>: an empty non-terminal
		return finish()
	case n == 3: // <node_id>.<node>.<infra>
		i, ok := node.byID[labels[0]]
		if !ok {
			return nxdomain()
		}
		s.addresses(m, q.Name, node.insts[i], want)
		return finish()
	case n == 4 && strings.HasPrefix(labels[0], "_") && isProto(labels[1]): // _svc._tcp.<node>.<infra>
		if want(mdns.TypeSRV) {
			s.srv(m, q.Name, base, node)
		}
		return finish()
	}
	return nxdomain()
}

func isProto(l string) bool { return l == "_tcp" || l == "_udp" }

// addresses appends in's A and AAAA records that the question wants, owned by owner.
func (s *Server) addresses(m *mdns.Msg, owner string, in zoneInstance, want func(uint16) bool) {
	if in.v4.IsValid() && want(mdns.TypeA) {
		m.Answer = append(m.Answer, &mdns.A{Hdr: s.hdr(owner, mdns.TypeA), A: net.IP(in.v4.AsSlice())})
	}
	if in.v6.IsValid() && want(mdns.TypeAAAA) {
		m.Answer = append(m.Answer, &mdns.AAAA{Hdr: s.hdr(owner, mdns.TypeAAAA), AAAA: net.IP(in.v6.AsSlice())})
	}
}

// srv appends one SRV record per instance of node, and each target's addresses to the
// additional section.
func (s *Server) srv(m *mdns.Msg, owner, base string, node *zoneNode) {
	for _, in := range node.insts {
		target := in.id + "." + base
		m.Answer = append(m.Answer, &mdns.SRV{Hdr: s.hdr(owner, mdns.TypeSRV), Priority: 10, Weight: 10,
			Port: node.port, Target: target})
		all := func(uint16) bool { return true }
		extra := &mdns.Msg{}
		s.addresses(extra, target, in, all)
		m.Extra = append(m.Extra, extra.Answer...)
	}
}

func (s *Server) hdr(owner string, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: owner, Rrtype: t, Class: mdns.ClassINET, Ttl: s.ttl}
}

// soa returns the zone's SOA record owned by owner. The serial follows the in-memory copy's
// version, so it changes whenever an answer may have changed.
func (s *Server) soa(z *zone, owner string) *mdns.SOA {
	return &mdns.SOA{
		Hdr:     s.hdr(owner, mdns.TypeSOA),
		Ns:      "ns." + Zone,
		Mbox:    "hostmaster." + Zone,
		Serial:  z.serial,
		Refresh: 60,
		Retry:   30,
		Expire:  3600,
		Minttl:  s.ttl,
	}
}
