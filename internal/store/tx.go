package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// boltTx implements Tx over one bbolt transaction. It is valid only inside the View or
// Update function it was passed to.
type boltTx struct {
	tx *bolt.Tx
}

var _ Tx = (*boltTx)(nil)

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func put(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// decode returns a fresh T decoded from data; decoding is what makes returned records copies
// that share nothing with the data file or with earlier results.
func decode[T any](data []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, err
	}
	return v, nil
}

// top returns a top-level bucket. Open creates them all, so a missing one means a damaged
// file.
func (t *boltTx) top(name []byte) (*bolt.Bucket, error) {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("%w: bucket %s is missing", ErrSchema, name)
	}
	return b, nil
}

// infra returns the bucket of infrastructure id, or an ErrNotFound naming it.
func (t *boltTx) infra(id string) (*bolt.Bucket, error) {
	infras, err := t.top(bucketInfras)
	if err != nil {
		return nil, err
	}
	var b *bolt.Bucket
	if id != "" {
		b = infras.Bucket([]byte(id))
	}
	if b == nil {
		return nil, fmt.Errorf("infra %q: %w", id, ErrNotFound)
	}
	return b, nil
}

// infraSub returns a nested bucket of infrastructure id. In a read-only transaction a missing
// nested bucket is returned as nil (read as empty); in a writable one it is created.
func (t *boltTx) infraSub(id string, name []byte) (*bolt.Bucket, error) {
	ib, err := t.infra(id)
	if err != nil {
		return nil, err
	}
	if b := ib.Bucket(name); b != nil || !t.tx.Writable() {
		return b, nil
	}
	return ib.CreateBucket(name)
}

// --- node definitions -------------------------------------------------------------------

func (t *boltTx) NodeDef(name string) (*NodeDefRecord, error) {
	b, err := t.top(bucketNodeDefs)
	if err != nil {
		return nil, err
	}
	data := b.Get([]byte(name))
	if data == nil || name == "" {
		return nil, fmt.Errorf("node definition %q: %w", name, ErrNotFound)
	}
	r, err := decode[NodeDefRecord](data)
	if err != nil {
		return nil, fmt.Errorf("node definition %q: decode: %w", name, err)
	}
	return r, nil
}

func (t *boltTx) NodeDefs() ([]*NodeDefRecord, error) {
	b, err := t.top(bucketNodeDefs)
	if err != nil {
		return nil, err
	}
	var out []*NodeDefRecord
	err = b.ForEach(func(k, v []byte) error {
		r, err := decode[NodeDefRecord](v)
		if err != nil {
			return fmt.Errorf("node definition %q: decode: %w", k, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

func (t *boltTx) PutNodeDef(r *NodeDefRecord) error {
	if r == nil || r.Name == "" {
		return errors.New("put node definition: name is empty")
	}
	b, err := t.top(bucketNodeDefs)
	if err != nil {
		return err
	}
	if err := put(b, []byte(r.Name), r); err != nil {
		return fmt.Errorf("put node definition %q: %w", r.Name, err)
	}
	return nil
}

func (t *boltTx) DeleteNodeDef(name string) error {
	b, err := t.top(bucketNodeDefs)
	if err != nil {
		return err
	}
	if name == "" || b.Get([]byte(name)) == nil {
		return fmt.Errorf("node definition %q: %w", name, ErrNotFound)
	}
	if err := b.Delete([]byte(name)); err != nil {
		return fmt.Errorf("delete node definition %q: %w", name, err)
	}
	return nil
}

// --- infrastructures --------------------------------------------------------------------

func (t *boltTx) Infra(id string) (*InfraRecord, error) {
	b, err := t.infra(id)
	if err != nil {
		return nil, err
	}
	return decodeInfra(id, b)
}

func decodeInfra(id string, b *bolt.Bucket) (*InfraRecord, error) {
	data := b.Get(keyInfraRecord)
	if data == nil {
		return nil, fmt.Errorf("infra %q: record missing: %w", id, ErrNotFound)
	}
	r, err := decode[InfraRecord](data)
	if err != nil {
		return nil, fmt.Errorf("infra %q: decode: %w", id, err)
	}
	return r, nil
}

func (t *boltTx) Infras() ([]*InfraRecord, error) {
	infras, err := t.top(bucketInfras)
	if err != nil {
		return nil, err
	}
	var out []*InfraRecord
	err = infras.ForEachBucket(func(k []byte) error {
		r, err := decodeInfra(string(k), infras.Bucket(k))
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

func (t *boltTx) PutInfra(r *InfraRecord) error {
	if r == nil || r.ID == "" {
		return errors.New("put infra: id is empty")
	}
	infras, err := t.top(bucketInfras)
	if err != nil {
		return err
	}
	b, err := infras.CreateBucketIfNotExists([]byte(r.ID))
	if err != nil {
		return fmt.Errorf("put infra %q: %w", r.ID, err)
	}
	for _, name := range infraBuckets {
		if _, err := b.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("put infra %q: create %s: %w", r.ID, name, err)
		}
	}
	if err := put(b, keyInfraRecord, r); err != nil {
		return fmt.Errorf("put infra %q: %w", r.ID, err)
	}
	return nil
}

func (t *boltTx) DeleteInfra(id string) error {
	if _, err := t.infra(id); err != nil {
		return err
	}
	infras, _ := t.top(bucketInfras)
	if err := infras.DeleteBucket([]byte(id)); err != nil {
		return fmt.Errorf("delete infra %q: %w", id, err)
	}
	return nil
}

// --- instances --------------------------------------------------------------------------

func (t *boltTx) Instance(infraID, nodeID string) (*InstanceRecord, error) {
	b, err := t.infraSub(infraID, bucketInstances)
	if err != nil {
		return nil, err
	}
	var data []byte
	if b != nil && nodeID != "" {
		data = b.Get([]byte(nodeID))
	}
	if data == nil {
		return nil, fmt.Errorf("instance %q of infra %q: %w", nodeID, infraID, ErrNotFound)
	}
	r, err := decode[InstanceRecord](data)
	if err != nil {
		return nil, fmt.Errorf("instance %q of infra %q: decode: %w", nodeID, infraID, err)
	}
	return r, nil
}

func (t *boltTx) Instances(infraID string) ([]*InstanceRecord, error) {
	return listInstances(t, infraID, bucketInstances)
}

// Archived returns archived instances oldest first (by creation time), so a report lists
// failures in the order the instances were made.
func (t *boltTx) Archived(infraID string) ([]*InstanceRecord, error) {
	out, err := listInstances(t, infraID, bucketArchive)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

func listInstances(t *boltTx, infraID string, name []byte) ([]*InstanceRecord, error) {
	b, err := t.infraSub(infraID, name)
	if err != nil || b == nil {
		return nil, err
	}
	var out []*InstanceRecord
	err = b.ForEach(func(k, v []byte) error {
		r, err := decode[InstanceRecord](v)
		if err != nil {
			return fmt.Errorf("%s %q of infra %q: decode: %w", name, k, infraID, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

func checkInstance(op string, r *InstanceRecord) error {
	switch {
	case r == nil:
		return fmt.Errorf("%s: record is nil", op)
	case r.InfraID == "":
		return fmt.Errorf("%s: infra id is empty", op)
	case r.NodeID == "":
		return fmt.Errorf("%s of infra %q: node id is empty", op, r.InfraID)
	}
	return nil
}

func (t *boltTx) PutInstance(r *InstanceRecord) error {
	if err := checkInstance("put instance", r); err != nil {
		return err
	}
	b, err := t.infraSub(r.InfraID, bucketInstances)
	if err != nil {
		return fmt.Errorf("put instance %q: %w", r.NodeID, err)
	}
	if err := put(b, []byte(r.NodeID), r); err != nil {
		return fmt.Errorf("put instance %q of infra %q: %w", r.NodeID, r.InfraID, err)
	}
	return nil
}

func (t *boltTx) DeleteInstance(infraID, nodeID string) error {
	b, err := t.infraSub(infraID, bucketInstances)
	if err != nil {
		return err
	}
	if b == nil || nodeID == "" || b.Get([]byte(nodeID)) == nil {
		return fmt.Errorf("instance %q of infra %q: %w", nodeID, infraID, ErrNotFound)
	}
	if err := b.Delete([]byte(nodeID)); err != nil {
		return fmt.Errorf("delete instance %q of infra %q: %w", nodeID, infraID, err)
	}
	return nil
}

func (t *boltTx) ArchiveInstance(r *InstanceRecord) error {
	if err := checkInstance("archive instance", r); err != nil {
		return err
	}
	inst, err := t.infraSub(r.InfraID, bucketInstances)
	if err != nil {
		return fmt.Errorf("archive instance %q: %w", r.NodeID, err)
	}
	arch, err := t.infraSub(r.InfraID, bucketArchive)
	if err != nil {
		return fmt.Errorf("archive instance %q: %w", r.NodeID, err)
	}
	if err := put(arch, []byte(r.NodeID), r); err != nil {
		return fmt.Errorf("archive instance %q of infra %q: %w", r.NodeID, r.InfraID, err)
	}
	if err := inst.Delete([]byte(r.NodeID)); err != nil {
		return fmt.Errorf("archive instance %q of infra %q: %w", r.NodeID, r.InfraID, err)
	}
	return nil
}

// --- sequenced logs: scaling requests, events, decisions ----------------------------------

// appendSeq stores v under the next sequence number of infraID's bucket name, after set has
// written the number (and the infra id) into v.
func appendSeq(t *boltTx, what, infraID string, name []byte, v any, set func(uint64)) error {
	b, err := t.infraSub(infraID, name)
	if err != nil {
		return fmt.Errorf("add %s: %w", what, err)
	}
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("add %s to infra %q: %w", what, infraID, err)
	}
	set(seq)
	if err := put(b, seqKey(seq), v); err != nil {
		return fmt.Errorf("add %s to infra %q: %w", what, infraID, err)
	}
	return nil
}

// listSeq decodes the records of infraID's bucket name with seq > after, oldest first, at
// most limit (0: all). It seeks straight to after+1, so paging costs only the page.
func listSeq[T any](t *boltTx, what, infraID string, name []byte, after uint64, limit int) ([]*T, error) {
	b, err := t.infraSub(infraID, name)
	if err != nil || b == nil || after == math.MaxUint64 {
		return nil, err
	}
	var out []*T
	c := b.Cursor()
	for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
		if limit > 0 && len(out) >= limit {
			break
		}
		r, err := decode[T](v)
		if err != nil {
			return out, fmt.Errorf("%s %d of infra %q: decode: %w", what, binary.BigEndian.Uint64(k), infraID, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (t *boltTx) AddScalingRequest(r *ScalingRequest) error {
	if r == nil {
		return errors.New("add scaling request: record is nil")
	}
	return appendSeq(t, "scaling request", r.InfraID, bucketRequests, r, func(s uint64) { r.Seq = s })
}

func (t *boltTx) ScalingRequests(infraID string) ([]*ScalingRequest, error) {
	return listSeq[ScalingRequest](t, "scaling request", infraID, bucketRequests, 0, 0)
}

func (t *boltTx) DeleteScalingRequest(infraID string, seq uint64) error {
	b, err := t.infraSub(infraID, bucketRequests)
	if err != nil {
		return err
	}
	if b == nil || b.Get(seqKey(seq)) == nil {
		return fmt.Errorf("scaling request %d of infra %q: %w", seq, infraID, ErrNotFound)
	}
	if err := b.Delete(seqKey(seq)); err != nil {
		return fmt.Errorf("delete scaling request %d of infra %q: %w", seq, infraID, err)
	}
	return nil
}

func (t *boltTx) AddEvent(e *Event) error {
	if e == nil {
		return errors.New("add event: record is nil")
	}
	return appendSeq(t, "event", e.InfraID, bucketEvents, e, func(s uint64) { e.Seq = s })
}

func (t *boltTx) Events(infraID string, after uint64, limit int) ([]*Event, error) {
	return listSeq[Event](t, "event", infraID, bucketEvents, after, limit)
}

func (t *boltTx) AddDecision(d *Decision) error {
	if d == nil {
		return errors.New("add decision: record is nil")
	}
	return appendSeq(t, "decision", d.InfraID, bucketDecisions, d, func(s uint64) { d.Seq = s })
}

func (t *boltTx) Decisions(infraID string, after uint64, limit int) ([]*Decision, error) {
	return listSeq[Decision](t, "decision", infraID, bucketDecisions, after, limit)
}
