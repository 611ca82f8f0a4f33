package events

import (
	"testing"

	"github.com/skyfleet/skyfleet/internal/store"
)

func TestHubDeliversByInfra(t *testing.T) {
	h := NewHub()
	a, cancelA := h.Subscribe("a", 4)
	defer cancelA()
	all, cancelAll := h.Subscribe("", 4)
	defer cancelAll()

	h.Publish(store.Event{InfraID: "a", Seq: 1, Type: "nodecreating"})
	h.Publish(store.Event{InfraID: "b", Seq: 1, Type: "nodecreating"})

	if e := <-a; e.InfraID != "a" || e.Seq != 1 {
		t.Fatalf("subscriber of a got %+v", e)
	}
	select {
	case e := <-a:
		t.Fatalf("subscriber of a got event of another infra: %+v", e)
	default:
	}
	if e1, e2 := <-all, <-all; e1.InfraID != "a" || e2.InfraID != "b" {
		t.Fatalf("subscriber of all got %+v, %+v", e1, e2)
	}
}

func TestHubCutsOffSlowSubscriber(t *testing.T) {
	h := NewHub()
	ch, cancel := h.Subscribe("a", 1)
	defer cancel()
	h.Publish(store.Event{InfraID: "a", Seq: 1})
	h.Publish(store.Event{InfraID: "a", Seq: 2}) // overflows the buffer of 1
	if e, ok := <-ch; !ok || e.Seq != 1 {
		t.Fatalf("first event: %+v ok=%v", e, ok)
	}
	if _, ok := <-ch; ok {
		t.Fatal("slow subscriber's channel should be closed after overflow")
	}
}

func TestHubCloseEndsSubscriptions(t *testing.T) {
	h := NewHub()
	ch, cancel := h.Subscribe("", 1)
	h.Close()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Close")
	}
	cancel() // must not panic after Close
	late, _ := h.Subscribe("x", 1)
	if _, ok := <-late; ok {
		t.Fatal("subscription after Close should be closed")
	}
}
