package dnsserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

// benchServer starts a server over a store with infras infrastructures of three nodes with
// ten ready instances each, and waits until it answers for the last one.
func benchServer(b *testing.B, infras int) (*Server, string) {
	b.Helper()
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	err = st.Update(context.Background(), func(tx store.Tx) error {
		for i := range infras {
			id := fmt.Sprintf("inf%04d", i)
			desc := fmt.Sprintf("infra_name: web%04d\nnodes:\n  - {name: app, type: app, variables: {port: 8080}}\n  - {name: lb, type: lb}\n  - {name: db, type: db}\n", i)
			if err := tx.PutInfra(&store.InfraRecord{ID: id, Descriptor: desc}); err != nil {
				return err
			}
			for _, node := range []string{"app", "lb", "db"} {
				for k := range 10 {
					if err := tx.PutInstance(&store.InstanceRecord{InfraID: id, Node: node, NodeID: fmt.Sprintf("%s-%s-%d", id, node, k),
						State: store.StateReady, Addresses: []string{fmt.Sprintf("127.%d.%d.%d", i/250, i%250, k+1)}}); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	hub := events.NewHub()
	b.Cleanup(hub.Close)
	s := New(Options{Addr: "127.0.0.1:0", Store: st, Hub: hub})
	if err := s.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	last := fmt.Sprintf("app.web%04d.skyfleet.", infras-1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := new(mdns.Msg)
		m.SetQuestion(last, mdns.TypeA)
		if r := s.answer(m, false); len(r.Answer) == 10 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("server did not load")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, last
}

// BenchmarkAnswer measures answering an SRV query (ten records plus ten additional) from
// the in-memory index of 1,000 infrastructures, without the network (TCP size limit, so
// nothing is truncated).
func BenchmarkAnswer(b *testing.B) {
	s, name := benchServer(b, 1000)
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeSRV)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := s.answer(m, true); len(r.Answer) != 10 {
				b.Errorf("answers = %d", len(r.Answer))
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// BenchmarkQueryUDP measures A queries over loopback UDP from parallel clients with the
// miekg/dns client, against 1,000 infrastructures.
func BenchmarkQueryUDP(b *testing.B) {
	s, name := benchServer(b, 1000)
	addr := s.Addr().String()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := &mdns.Client{Net: "udp", Timeout: 5 * time.Second}
		conn, err := c.Dial(addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeA)
		for pb.Next() {
			m.Id = mdns.Id()
			r, _, err := c.ExchangeWithConn(m, conn)
			if err != nil {
				b.Error(err)
				return
			}
			if len(r.Answer) != 10 {
				b.Errorf("answers = %d", len(r.Answer))
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}
