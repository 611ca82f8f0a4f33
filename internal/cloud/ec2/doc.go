// Package ec2 is the `ec2` cloud provider: each node instance is an Amazon EC2 (or
// EC2-compatible) virtual machine, started through aws-sdk-go-v2 against the endpoint and
// region the node's resource section names. It accepts Occopus' ec2 resource keys (type,
// endpoint, regionname, image_id, instance_type, key_name, security_group_ids, subnet_id,
// name, tags) and the `accesskey`/`secretkey` credentials of auth_data.yaml.
//
// Create is idempotent on the node id through EC2's own ClientToken; instances carry
// skyfleet's tags so List finds them for adoption and orphan clean-up; the rendered
// cloud-init text is the user data. Throttling is retried with backoff by the SDK's
// standard retryer; what is still transient after that is returned as a
// cloud.RetryableError. DescribeInstances' eventual consistency right after RunInstances is
// absorbed (a just-created instance that is not visible yet is pending, not gone).
//
// It is not a general EC2 client: no spot instances, volumes, elastic IPs, instance
// profiles or launch templates. Package ec2test is an in-process fake of the EC2 Query API
// for tests.
package ec2
