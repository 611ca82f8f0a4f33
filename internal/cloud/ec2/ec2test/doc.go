// Package ec2test is an in-process fake of the Amazon EC2 Query API (form-encoded POSTs with
// Action=RunInstances, DescribeInstances or TerminateInstances; XML answers in the shapes and
// namespace of API version 2016-11-15; errors as <Response><Errors><Error>…), served by
// net/http/httptest on a loopback address, so that skyfleet's ec2 provider can be tested
// with the real AWS SDK and no network.
//
// It keeps instances in memory, honours ClientToken idempotency as EC2 does (a repeated
// RunInstances with a token returns the original instance), supports tag and state filters
// and pagination in DescribeInstances, and can inject the faults that matter to an
// orchestrator: throttling (RequestLimitExceeded), arbitrary API errors, a response lost
// after the request was processed, and eventual consistency (a new instance is NotFound for
// its first DescribeInstances calls).
//
// It is not a full EC2: only the three actions above exist, instances change state only when
// a test says so (Boot, SetState), and request signatures are parsed for the access key but
// not verified.
package ec2test
