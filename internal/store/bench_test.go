package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkAddEvent measures one committed (fsynced) Update that appends one event, the way
// the engine records each step.
func BenchmarkAddEvent(b *testing.B) {
	s := openTest(b, b.TempDir())
	putInfra(b, s, "i1")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		err := s.Update(ctx, func(tx Tx) error {
			return tx.AddEvent(&Event{InfraID: "i1", At: t0, Type: "nodecreated", Node: "app",
				NodeID: "5b0f2c1e-8a7d-4e0b-9a39-1f0c6d1b2a44", Message: "node created"})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchInstance(i int) *InstanceRecord {
	return &InstanceRecord{
		InfraID: "i1", Node: "app", NodeID: fmt.Sprintf("%08d-8a7d-4e0b-9a39-1f0c6d1b2a44", i),
		State: StateReady, ResourceType: "sim", ProviderID: fmt.Sprintf("sim-%d", i),
		Resource:  map[string]any{"type": "sim", "boot_time": "0s"},
		Addresses: []string{fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)},
		Created:   t0, Ready: t0.Add(time.Second), Health: "ok", HealthAt: t0,
	}
}

// BenchmarkPutInstance10000 measures writing 10,000 instance records in one Update (a
// steady-state pass over a large infrastructure that touches every record).
func BenchmarkPutInstance10000(b *testing.B) {
	s := openTest(b, b.TempDir())
	putInfra(b, s, "i1")
	recs := make([]*InstanceRecord, 10000)
	for i := range recs {
		recs[i] = benchInstance(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		err := s.Update(ctx, func(tx Tx) error {
			for _, r := range recs {
				if err := tx.PutInstance(r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInstances10000 measures reading back 10,000 instance records in one View.
func BenchmarkInstances10000(b *testing.B) {
	s := openTest(b, b.TempDir())
	putInfra(b, s, "i1")
	update(b, s, func(tx Tx) error {
		for i := 0; i < 10000; i++ {
			if err := tx.PutInstance(benchInstance(i)); err != nil {
				return err
			}
		}
		return nil
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		err := s.View(ctx, func(tx Tx) error {
			all, err := tx.Instances("i1")
			if err == nil && len(all) != 10000 {
				err = fmt.Errorf("got %d instances", len(all))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
