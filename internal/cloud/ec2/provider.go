package ec2

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/auth"
	"github.com/skyfleet/skyfleet/internal/cloud/cloudinit"
)

// ec2API is the part of the SDK client the provider uses.
type ec2API interface {
	RunInstances(ctx context.Context, in *awsec2.RunInstancesInput, optFns ...func(*awsec2.Options)) (*awsec2.RunInstancesOutput, error)
	DescribeInstances(ctx context.Context, in *awsec2.DescribeInstancesInput, optFns ...func(*awsec2.Options)) (*awsec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *awsec2.TerminateInstancesInput, optFns ...func(*awsec2.Options)) (*awsec2.TerminateInstancesOutput, error)
}

// Provider starts, describes and terminates instances in one region of one EC2 endpoint
// with one set of credentials. It is safe for concurrent use.
type Provider struct {
	api      ec2API
	endpoint string
	region   string
	creds    *cloud.Credentials
	created  *launches
	pageSize int32
	log      *slog.Logger
}

var (
	_ cloud.Provider = (*Provider)(nil)
	_ cloud.Lister   = (*Provider)(nil)
)

// EC2 error codes the provider acts on.
const (
	codeNotFound  = "InvalidInstanceID.NotFound"
	codeMalformed = "InvalidInstanceID.Malformed"
)

// Create starts one instance with RunInstances. ClientToken is spec.Token, so a repeated
// call (also one whose first response was lost, retried by the SDK or by the engine) gets
// the original instance back from EC2 instead of a second one. The user data is spec.UserData
// (checked with cloudinit.Check against EC2's 16 KiB limit), base64-encoded. The instance is
// tagged at launch with the user's tags, its Name, and skyfleet's tags, which win.
func (p *Provider) Create(ctx context.Context, spec cloud.InstanceSpec) (string, error) {
	if spec.Token == "" {
		return "", errors.New("ec2 create: empty idempotency token")
	}
	if len(spec.Token) > 64 {
		return "", fmt.Errorf("ec2 create: idempotency token is %d characters long; EC2 client tokens allow at most 64", len(spec.Token))
	}
	res, err := DecodeResource(spec.Resource)
	if err != nil {
		return "", fmt.Errorf("ec2 create %s: %w", spec.Node, err)
	}
	if err := cloudinit.Check(spec.UserData, cloudinit.EC2Limit); err != nil {
		return "", fmt.Errorf("ec2 create %s: %w", spec.Node, err)
	}
	tags := instanceTags(res, spec)
	in := &awsec2.RunInstancesInput{
		ImageId:      aws.String(res.ImageID),
		InstanceType: types.InstanceType(res.InstanceType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		ClientToken:  aws.String(spec.Token),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeInstance,
			Tags:         tags,
		}},
	}
	if res.KeyName != "" {
		in.KeyName = aws.String(res.KeyName)
	}
	if len(res.SecurityGroupIDs) > 0 {
		in.SecurityGroupIds = res.SecurityGroupIDs
	}
	if res.SubnetID != "" {
		in.SubnetId = aws.String(res.SubnetID)
	}
	if spec.UserData != "" {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(spec.UserData)))
	}
	log := p.log.With("infra_id", spec.InfraID, "node", spec.Node, "node_id", spec.Token)
	out, err := p.api.RunInstances(ctx, in)
	if err != nil {
		if code := errorCode(err); code == "IdempotentParameterMismatch" {
			return "", fmt.Errorf("ec2 create %s: EC2 already started an instance for node id %s with different parameters (image, type, …); the resource section changed between attempts: %w",
				spec.Node, spec.Token, p.redact(err))
		}
		return "", p.apiError("create "+spec.Node, err)
	}
	if len(out.Instances) == 0 || aws.ToString(out.Instances[0].InstanceId) == "" {
		return "", fmt.Errorf("ec2 create %s: RunInstances answered without an instance", spec.Node)
	}
	first := out.Instances[0]
	id := aws.ToString(first.InstanceId)
	p.created.add(id)
	log.Info("instance started", "instance_id", id, "image_id", res.ImageID, "instance_type", res.InstanceType, "state", stateName(first.State))
	return id, nil
}

// instanceTags merges user tags, Name and skyfleet's tags (in rising precedence), sorted.
func instanceTags(res Resource, spec cloud.InstanceSpec) []types.Tag {
	m := map[string]string{}
	for k, v := range res.Tags {
		m[k] = v
	}
	switch {
	case res.Name != "":
		m["Name"] = res.Name
	case m["Name"] == "":
		m["Name"] = DefaultName(spec.InfraName, spec.InfraID, spec.Node, spec.Token)
	}
	for k, v := range spec.Tags {
		m[k] = v
	}
	m[cloud.TagManaged] = "1"
	m[cloud.TagNodeID] = spec.Token
	if spec.InfraID != "" {
		m[cloud.TagInfraID] = spec.InfraID
	}
	if spec.Node != "" {
		m[cloud.TagNode] = spec.Node
	}
	if spec.InfraName != "" {
		m[cloud.TagInfraName] = spec.InfraName
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return tags
}

// Describe reports the instance's state and addresses. An instance EC2 does not know is
// gone, except one this process started less than the consistency grace ago: EC2's
// DescribeInstances is eventually consistent and may not know a new instance yet, so that
// one is pending. After a restart the launch times are no longer known and NotFound reads
// as gone; the engine only asks about instances it recorded after Create returned, which
// EC2 has long known by the time a restarted orchestrator asks.
func (p *Provider) Describe(ctx context.Context, id string) (cloud.Instance, error) {
	out, err := p.api.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		switch errorCode(err) {
		case codeNotFound:
			return p.notVisible(id), nil
		case codeMalformed:
			return cloud.Instance{ID: id, State: cloud.StateGone, Detail: "EC2 says the instance id is malformed"}, nil
		}
		return cloud.Instance{}, p.apiError("describe "+id, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) != id {
				continue
			}
			p.created.forget(id) // visible now; a later NotFound means it is gone
			return toInstance(in)
		}
	}
	return p.notVisible(id), nil
}

func (p *Provider) notVisible(id string) cloud.Instance {
	if age, young := p.created.young(id); young {
		return cloud.Instance{ID: id, State: cloud.StatePending,
			Detail: fmt.Sprintf("started %s ago and not visible in DescribeInstances yet (EC2 is eventually consistent)", age.Round(time.Second))}
	}
	return cloud.Instance{ID: id, State: cloud.StateGone, Detail: "EC2 does not know the instance"}
}

// stateMap is Occopus' mapping of EC2 states: pending→pending, running→ready,
// shutting-down/terminated→shutdown, stopping/stopped→temp_failed.
var stateMap = map[types.InstanceStateName]cloud.State{
	types.InstanceStateNamePending:      cloud.StatePending,
	types.InstanceStateNameRunning:      cloud.StateRunning,
	types.InstanceStateNameShuttingDown: cloud.StateGone,
	types.InstanceStateNameTerminated:   cloud.StateGone,
	types.InstanceStateNameStopping:     cloud.StateStopped,
	types.InstanceStateNameStopped:      cloud.StateStopped,
}

func stateName(s *types.InstanceState) string {
	if s == nil {
		return ""
	}
	return string(s.Name)
}

// toInstance maps an EC2 instance. An unknown state is an error, as in Occopus (the pass
// acts on nothing and asks again later).
func toInstance(in types.Instance) (cloud.Instance, error) {
	id := aws.ToString(in.InstanceId)
	name := types.InstanceStateName(stateName(in.State))
	state, ok := stateMap[name]
	if !ok {
		return cloud.Instance{}, fmt.Errorf("ec2 describe %s: unknown instance state %q (known: pending, running, shutting-down, terminated, stopping, stopped)", id, name)
	}
	out := cloud.Instance{
		ID:             id,
		State:          state,
		Addresses:      addresses(aws.ToString(in.PublicDnsName), aws.ToString(in.PublicIpAddress), aws.ToString(in.PrivateIpAddress)),
		PrivateAddress: aws.ToString(in.PrivateIpAddress),
		Tags:           map[string]string{},
	}
	for _, t := range in.Tags {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	out.Token = out.Tags[cloud.TagNodeID]
	if out.Token == "" {
		out.Token = aws.ToString(in.ClientToken)
	}
	if in.LaunchTime != nil {
		out.Created = *in.LaunchTime
	}
	if state != cloud.StateRunning && state != cloud.StatePending {
		if in.StateReason != nil && aws.ToString(in.StateReason.Message) != "" {
			out.Detail = string(name) + ": " + aws.ToString(in.StateReason.Message)
		} else {
			out.Detail = string(name)
		}
	}
	return out, nil
}

// addresses is Occopus' resource_address list: public DNS name, public IP, private IP, with
// empty ones dropped and repeats removed, in that order.
func addresses(candidates ...string) []string {
	var out []string
	for _, a := range candidates {
		if a == "" {
			continue
		}
		dup := false
		for _, b := range out {
			dup = dup || a == b
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// Destroy terminates the instance. An instance EC2 does not know has nothing to destroy,
// except one this process started less than the consistency grace ago, which EC2 may not
// show yet: that answer is retryable, so that it is terminated once visible and never left
// running.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	_, err := p.api.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		switch errorCode(err) {
		case codeNotFound:
			if _, young := p.created.young(id); young {
				return &cloud.RetryableError{Err: fmt.Errorf("ec2 destroy %s: the instance was just started and is not visible to TerminateInstances yet (EC2 is eventually consistent)", id)}
			}
			p.log.Info("instance already gone", "instance_id", id)
			return nil
		case codeMalformed:
			return nil
		}
		return p.apiError("destroy "+id, err)
	}
	p.created.forget(id)
	p.log.Info("instance terminated", "instance_id", id)
	return nil
}

// listStates are the states List reports; shutting-down and terminated instances are on
// their way out (both read as gone) and are left out.
var listStates = []string{"pending", "running", "stopping", "stopped"}

// List returns the instances carrying all of tags (DescribeInstances with tag filters), in
// every state but shutting-down and terminated.
func (p *Provider) List(ctx context.Context, tags map[string]string) ([]cloud.Instance, error) {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	filters := make([]types.Filter, 0, len(keys)+1)
	for _, k := range keys {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	filters = append(filters, types.Filter{Name: aws.String("instance-state-name"), Values: listStates})
	pages := awsec2.NewDescribeInstancesPaginator(p.api, &awsec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(p.pageSize)})
	var out []cloud.Instance
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, p.apiError("list instances", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				inst, err := toInstance(in)
				if err != nil {
					return nil, err
				}
				out = append(out, inst)
			}
		}
	}
	return out, nil
}

// errorCode returns the EC2 error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// transientCodes are EC2 error codes worth retrying later, besides throttling.
var transientCodes = map[string]bool{
	"InternalError": true, "InternalFailure": true, "ServiceUnavailable": true, "Unavailable": true,
	"RequestTimeout": true, "RequestTimeoutException": true, "InsufficientInstanceCapacity": true,
}

// transient reports whether err is worth retrying later: throttling (after the SDK's own
// retries), a server-side failure, or a connection that broke.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	code := errorCode(err)
	if _, ok := retry.DefaultThrottleErrorCodes[code]; ok || transientCodes[code] {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	var conn interface{ ConnectionError() bool }
	return errors.As(err, &conn) && conn.ConnectionError()
}

func (p *Provider) redact(err error) error { return auth.RedactError(err, p.creds) }

// apiError names the operation, scrubs credential values from the SDK's text and marks
// transient failures retryable.
func (p *Provider) apiError(op string, err error) error {
	wrapped := fmt.Errorf("ec2 %s at %s: %w", op, p.endpoint, p.redact(err))
	if transient(err) {
		return &cloud.RetryableError{Err: wrapped}
	}
	return wrapped
}

// String describes the provider without credentials.
func (p *Provider) String() string {
	return "ec2 " + strings.TrimSuffix(p.endpoint, "/") + " (" + p.region + ")"
}
