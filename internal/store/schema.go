package store

import (
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Bucket layout (schema version 1):
//
//	meta/schema_version            decimal schema version
//	nodedefs/<name>                NodeDefRecord (JSON)
//	infras/<id>/record             InfraRecord (JSON)
//	infras/<id>/instances/<node_id>  InstanceRecord
//	infras/<id>/archive/<node_id>    InstanceRecord (archived)
//	infras/<id>/requests/<seq>     ScalingRequest, seq big-endian uint64
//	infras/<id>/events/<seq>       Event
//	infras/<id>/decisions/<seq>    Decision
//
// Everything of an infrastructure lives under its own bucket, so DeleteInfra is one
// DeleteBucket. Sequence numbers come from each nested bucket's NextSequence.
var (
	bucketMeta      = []byte("meta")
	bucketNodeDefs  = []byte("nodedefs")
	bucketInfras    = []byte("infras")
	bucketInstances = []byte("instances")
	bucketArchive   = []byte("archive")
	bucketRequests  = []byte("requests")
	bucketEvents    = []byte("events")
	bucketDecisions = []byte("decisions")

	keySchemaVersion = []byte("schema_version")
	keyInfraRecord   = []byte("record")

	topBuckets   = [][]byte{bucketMeta, bucketNodeDefs, bucketInfras}
	infraBuckets = [][]byte{bucketInstances, bucketArchive, bucketRequests, bucketEvents, bucketDecisions}
)

// migration upgrades a data file by one schema version. It runs inside the open-time
// transaction together with every other pending migration, so an upgrade is applied
// completely or not at all.
type migration struct {
	// name says what the migration does, for the log.
	name  string
	apply func(tx *bolt.Tx) error
}

// schema is a list of migrations: migrations[i] upgrades version i+1 to i+2, so the current
// version is len(migrations)+1. Version 1 is the layout described above and needs none.
type schema struct {
	migrations []migration
}

// currentSchema is skyfleet's schema. Append a migration here (never edit or reorder one)
// when the layout changes.
func currentSchema() schema { return schema{} }

// version is the schema version this build writes.
func (s schema) version() int { return len(s.migrations) + 1 }

// prepare brings tx's file to s.version(): it initialises an empty file, applies pending
// migrations in order, and refuses a file written by a newer schema. It returns the version
// the file had before and the names of the migrations it applied.
func (s schema) prepare(tx *bolt.Tx) (from int, applied []string, err error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return 0, nil, fmt.Errorf("%w: the data file has no %s/%s; it was not written by skyfleet",
				ErrSchema, bucketMeta, keySchemaVersion)
		}
		for _, name := range topBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return 0, nil, fmt.Errorf("initialise bucket %s: %w", name, err)
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(strconv.Itoa(s.version()))); err != nil {
			return 0, nil, fmt.Errorf("initialise schema version: %w", err)
		}
		return s.version(), nil, nil
	}
	raw := meta.Get(keySchemaVersion)
	v, perr := strconv.Atoi(string(raw))
	if perr != nil || v < 1 {
		return 0, nil, fmt.Errorf("%w: %s/%s is %q, want a positive integer", ErrSchema, bucketMeta, keySchemaVersion, raw)
	}
	if v > s.version() {
		return v, nil, fmt.Errorf("%w: the data file has schema version %d, this skyfleet supports up to %d; use a newer skyfleet",
			ErrSchema, v, s.version())
	}
	for i := v - 1; i < len(s.migrations); i++ {
		m := s.migrations[i]
		if err := m.apply(tx); err != nil {
			return v, applied, fmt.Errorf("migrate schema %d to %d (%s): %w", i+1, i+2, m.name, err)
		}
		applied = append(applied, m.name)
	}
	for _, name := range topBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return v, applied, fmt.Errorf("initialise bucket %s: %w", name, err)
		}
	}
	if v != s.version() {
		if err := tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(strconv.Itoa(s.version()))); err != nil {
			return v, applied, fmt.Errorf("record schema version: %w", err)
		}
	}
	return v, applied, nil
}
