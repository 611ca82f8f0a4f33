package ec2test

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Namespace is the XML namespace of EC2 API version 2016-11-15, the version the SDK speaks.
const Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// Instance is the fake's record of one instance. Values returned by Server methods are
// copies.
type Instance struct {
	ID               string
	ReservationID    string
	ImageID          string
	InstanceType     string
	KeyName          string
	SubnetID         string
	SecurityGroupIDs []string
	// UserData is the decoded user data (the SDK sends it base64-encoded); RawUserData is
	// what arrived on the wire.
	UserData    string
	RawUserData string
	ClientToken string
	State       string
	PublicDNS   string
	PublicIP    string
	PrivateIP   string
	Tags        map[string]string
	LaunchTime  time.Time
	// StateReason is the stateReason message (for example why it was terminated).
	StateReason string
}

// Request is one API call as the fake received it.
type Request struct {
	Action string
	Form   url.Values
	// AccessKey and Region come from the SigV4 Authorization header.
	AccessKey string
	Region    string
}

type fault struct {
	remaining int
	status    int
	code, msg string
}

// Server is the fake EC2 endpoint. Its methods are safe for concurrent use.
type Server struct {
	// URL is the endpoint to give the SDK (BaseEndpoint), http://127.0.0.1:PORT.
	URL string

	srv   *httptest.Server
	clock func() time.Time

	mu        sync.Mutex
	seq       int
	instances map[string]*Instance
	order     []string
	tokens    map[string]string // client token → instance id
	hidden    map[string]int    // instance id → NotFound answers left
	hideNew   int
	faults    map[string][]*fault // action ("" = any) → queued faults
	lose      map[string]int      // action → responses to drop after processing
	stall     map[string]int      // action → requests to leave unanswered
	closing   chan struct{}
	closeOnce sync.Once
	calls     map[string]int
	requests  []Request
}

// Options configures a Server.
type Options struct {
	// Clock stamps launch times; default time.Now.
	Clock func() time.Time
}

// New starts a fake EC2 endpoint on a loopback address. Close it when done (NewT closes it
// with the test).
func New(opts Options) *Server {
	s := &Server{
		clock:     opts.Clock,
		instances: map[string]*Instance{},
		tokens:    map[string]string{},
		hidden:    map[string]int{},
		faults:    map[string][]*fault{},
		lose:      map[string]int{},
		stall:     map[string]int{},
		calls:     map[string]int{},
		closing:   make(chan struct{}),
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// NewT starts a fake EC2 endpoint that is closed when the test ends.
func NewT(t interface{ Cleanup(func()) }, opts Options) *Server {
	s := New(opts)
	t.Cleanup(s.Close)
	return s
}

// Close shuts the endpoint down, releasing stalled requests first.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.Close()
}

// Stall makes the next n calls of action hang without an answer until the client gives up
// (its context ends) or the server closes, as an unresponsive endpoint does.
func (s *Server) Stall(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stall[action] += n
}

// Throttle makes the next n calls of action (all actions when action is "") fail with
// RequestLimitExceeded and HTTP 503, as EC2 throttles.
func (s *Server) Throttle(action string, n int) {
	s.Fail(action, n, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
}

// Fail makes the next n calls of action (all actions when action is "") fail with the given
// HTTP status, error code and message, before anything is processed.
func (s *Server) Fail(action string, n, status int, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[action] = append(s.faults[action], &fault{remaining: n, status: status, code: code, msg: message})
}

// LoseResponses makes the next n calls of action succeed on the fake's side (the instance is
// started, terminated, …) and then close the connection without an answer, as when a
// response is lost on the network.
func (s *Server) LoseResponses(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[action] += n
}

// HideNewInstances makes every instance started from now on invisible to its first n
// DescribeInstances and TerminateInstances calls (they answer InvalidInstanceID.NotFound),
// as EC2's eventual consistency does right after RunInstances.
func (s *Server) HideNewInstances(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hideNew = n
}

// Calls returns how many requests of action arrived, failed ones included.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Instances returns every instance the fake holds (terminated ones included), in launch order.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Instance, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.instances[id].clone())
	}
	return out
}

// Instance returns the instance with id and whether it exists.
func (s *Server) Instance(id string) (Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[id]
	if !ok {
		return Instance{}, false
	}
	return in.clone(), true
}

// Boot moves a pending instance to running and gives it a public IP address and DNS name
// (from 203.0.113.0/24, a documentation range: no traffic is ever sent to it).
func (s *Server) Boot(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instances[id]
	if in == nil {
		return
	}
	in.State = "running"
	n := s.indexOf(id) + 10
	in.PublicIP = fmt.Sprintf("203.0.113.%d", n)
	in.PublicDNS = fmt.Sprintf("ec2-203-0-113-%d.compute-1.amazonaws.com", n)
}

// SetState sets an instance's state name (pending, running, shutting-down, terminated,
// stopping, stopped, or anything else to test unknown states) and its state reason.
func (s *Server) SetState(id, state, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.instances[id]; in != nil {
		in.State = state
		in.StateReason = reason
	}
}

// SetAddresses sets an instance's public DNS name, public IP and private IP.
func (s *Server) SetAddresses(id, publicDNS, publicIP, privateIP string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.instances[id]; in != nil {
		in.PublicDNS, in.PublicIP, in.PrivateIP = publicDNS, publicIP, privateIP
	}
}

// AddInstance inserts an instance as if it had been started outside the provider (for
// adoption and orphan tests). ID, State, LaunchTime and PrivateIP get defaults when empty.
func (s *Server) AddInstance(in Instance) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(in).ID
}

func (s *Server) indexOf(id string) int {
	for i, x := range s.order {
		if x == id {
			return i
		}
	}
	return -1
}

func (s *Server) add(in Instance) *Instance {
	s.seq++
	if in.ID == "" {
		in.ID = fmt.Sprintf("i-%017x", 0xabc000+s.seq)
	}
	in.ReservationID = fmt.Sprintf("r-%017x", 0xdef000+s.seq)
	if in.State == "" {
		in.State = "pending"
	}
	if in.LaunchTime.IsZero() {
		in.LaunchTime = s.clock().UTC()
	}
	if in.PrivateIP == "" {
		in.PrivateIP = fmt.Sprintf("10.0.%d.%d", s.seq/250, s.seq%250+4)
	}
	if in.Tags == nil {
		in.Tags = map[string]string{}
	}
	p := &in
	s.instances[in.ID] = p
	s.order = append(s.order, in.ID)
	return p
}

func (in *Instance) clone() Instance {
	c := *in
	c.SecurityGroupIDs = append([]string(nil), in.SecurityGroupIDs...)
	c.Tags = make(map[string]string, len(in.Tags))
	for k, v := range in.Tags {
		c.Tags[k] = v
	}
	return c
}

// apiError is an EC2 error answer.
type apiError struct {
	status    int
	code, msg string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, &apiError{http.StatusBadRequest, "InvalidAction", "the EC2 Query API takes POST requests"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "MalformedQueryString", err.Error()})
		return
	}
	action := r.PostForm.Get("Action")
	req := Request{Action: action, Form: r.PostForm}
	req.AccessKey, req.Region = parseAuth(r.Header.Get("Authorization"))

	s.mu.Lock()
	s.calls[action]++
	s.requests = append(s.requests, req)
	if s.stall[action] > 0 {
		s.stall[action]--
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	}
	if f := s.nextFault(action); f != nil {
		s.mu.Unlock()
		writeError(w, &apiError{f.status, f.code, f.msg})
		return
	}
	if req.AccessKey == "" {
		s.mu.Unlock()
		writeError(w, &apiError{http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials"})
		return
	}
	if v := r.PostForm.Get("Version"); v != "2016-11-15" {
		s.mu.Unlock()
		writeError(w, &apiError{http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("unsupported API version %q", v)})
		return
	}
	var body any
	var aerr *apiError
	switch action {
	case "RunInstances":
		body, aerr = s.runInstances(r.PostForm)
	case "DescribeInstances":
		body, aerr = s.describeInstances(r.PostForm)
	case "TerminateInstances":
		body, aerr = s.terminateInstances(r.PostForm)
	default:
		aerr = &apiError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("The action %s is not valid for this web service.", action)}
	}
	lose := false
	if aerr == nil && s.lose[action] > 0 {
		s.lose[action]--
		lose = true
	}
	s.mu.Unlock()

	if lose {
		// The work is done; the answer never arrives.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		// Without a hijackable connection the closest is a server error after the work.
		writeError(w, &apiError{http.StatusInternalServerError, "InternalError", "An internal error has occurred"})
		return
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(body)
}

func (s *Server) nextFault(action string) *fault {
	for _, key := range []string{action, ""} {
		q := s.faults[key]
		for len(q) > 0 && q[0].remaining <= 0 {
			q = q[1:]
		}
		s.faults[key] = q
		if len(q) > 0 {
			q[0].remaining--
			return q[0]
		}
	}
	return nil
}

// parseAuth reads the access key and region from a SigV4 Authorization header:
// "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request, …".
func parseAuth(h string) (accessKey, region string) {
	_, cred, ok := strings.Cut(h, "Credential=")
	if !ok {
		return "", ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) < 3 {
		return "", ""
	}
	return parts[0], parts[2]
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	type xmlErr struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	body := struct {
		XMLName   xml.Name `xml:"Response"`
		Errors    []xmlErr `xml:"Errors>Error"`
		RequestID string   `xml:"RequestID"`
	}{Errors: []xmlErr{{e.code, e.msg}}, RequestID: "req-fake-0001"}
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(body)
}

// indexed returns the values of a list parameter: prefix.1, prefix.2, … in order.
func indexed(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func (s *Server) runInstances(form url.Values) (any, *apiError) {
	image, itype := form.Get("ImageId"), form.Get("InstanceType")
	if image == "" {
		return nil, &apiError{http.StatusBadRequest, "MissingParameter", "The request must contain the parameter ImageId"}
	}
	if form.Get("MinCount") != "1" || form.Get("MaxCount") != "1" {
		return nil, &apiError{http.StatusBadRequest, "InvalidParameterValue", "the fake starts exactly one instance per call (MinCount=MaxCount=1)"}
	}
	if !strings.HasPrefix(image, "ami-") {
		return nil, &apiError{http.StatusBadRequest, "InvalidAMIID.Malformed", fmt.Sprintf("Invalid id: %q (expecting \"ami-...\")", image)}
	}
	token := form.Get("ClientToken")
	if token != "" {
		if id, ok := s.tokens[token]; ok {
			in := s.instances[id]
			if in.ImageID != image || in.InstanceType != itype {
				return nil, &apiError{http.StatusBadRequest, "IdempotentParameterMismatch",
					"The client token you have provided is associated with a resource that is already deleted or has different parameters."}
			}
			return runResponseOf(in), nil
		}
	}
	in := Instance{
		ImageID: image, InstanceType: itype, KeyName: form.Get("KeyName"), SubnetID: form.Get("SubnetId"),
		SecurityGroupIDs: indexed(form, "SecurityGroupId"), ClientToken: token, RawUserData: form.Get("UserData"),
		Tags: map[string]string{},
	}
	if in.RawUserData != "" {
		b, err := base64.StdEncoding.DecodeString(in.RawUserData)
		if err != nil {
			return nil, &apiError{http.StatusBadRequest, "InvalidParameterValue", "Invalid BASE64 encoding of user data"}
		}
		in.UserData = string(b)
	}
	for i := 1; ; i++ {
		p := "TagSpecification." + strconv.Itoa(i)
		rt, ok := form[p+".ResourceType"]
		if !ok {
			break
		}
		if rt[0] != "instance" {
			continue
		}
		for j := 1; ; j++ {
			k, ok := form[fmt.Sprintf("%s.Tag.%d.Key", p, j)]
			if !ok {
				break
			}
			in.Tags[k[0]] = form.Get(fmt.Sprintf("%s.Tag.%d.Value", p, j))
		}
	}
	if len(in.Tags) > 50 {
		return nil, &apiError{http.StatusBadRequest, "TagLimitExceeded", "The maximum number of tags per resource is 50."}
	}
	p := s.add(in)
	if token != "" {
		s.tokens[token] = p.ID
	}
	if s.hideNew > 0 {
		s.hidden[p.ID] = s.hideNew
	}
	return runResponseOf(p), nil
}

// visible reports whether id exists and may be seen now, consuming one hidden answer.
func (s *Server) visible(id string) bool {
	if _, ok := s.instances[id]; !ok {
		return false
	}
	if s.hidden[id] > 0 {
		s.hidden[id]--
		return false
	}
	return true
}

func notFound(ids []string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidInstanceID.NotFound",
		fmt.Sprintf("The instance IDs '%s' do not exist", strings.Join(ids, ", "))}
}

func checkIDs(ids []string) *apiError {
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") {
			return &apiError{http.StatusBadRequest, "InvalidInstanceID.Malformed", fmt.Sprintf("Invalid id: %q", id)}
		}
	}
	return nil
}

func (s *Server) describeInstances(form url.Values) (any, *apiError) {
	ids := indexed(form, "InstanceId")
	maxResults := form.Get("MaxResults")
	if len(ids) > 0 && maxResults != "" {
		return nil, &apiError{http.StatusBadRequest, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults"}
	}
	if err := checkIDs(ids); err != nil {
		return nil, err
	}
	var selected []*Instance
	if len(ids) > 0 {
		var missing []string
		for _, id := range ids {
			if !s.visible(id) {
				missing = append(missing, id)
				continue
			}
			selected = append(selected, s.instances[id])
		}
		if len(missing) > 0 {
			return nil, notFound(missing)
		}
	} else {
		for _, id := range s.order {
			if s.hidden[id] > 0 {
				continue // not yet visible to listings either
			}
			selected = append(selected, s.instances[id])
		}
	}
	filters, ferr := parseFilters(form)
	if ferr != nil {
		return nil, ferr
	}
	var matched []*Instance
	for _, in := range selected {
		if filters.match(in) {
			matched = append(matched, in)
		}
	}
	start := 0
	if tok := form.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(matched) {
			return nil, &apiError{http.StatusBadRequest, "InvalidParameterValue", "Invalid NextToken"}
		}
		start = n
	}
	end := len(matched)
	next := ""
	if maxResults != "" {
		m, err := strconv.Atoi(maxResults)
		if err != nil || m < 5 || m > 1000 {
			return nil, &apiError{http.StatusBadRequest, "InvalidParameterValue", "Value for parameter maxResults is invalid. Expecting a value between 5 and 1000."}
		}
		if start+m < end {
			end = start + m
			next = strconv.Itoa(end)
		}
	}
	resp := describeResponse{NextToken: next}
	for _, in := range matched[start:end] {
		resp.Reservations = append(resp.Reservations, reservationOf(in))
	}
	return resp, nil
}

type filterSet map[string][]string

func parseFilters(form url.Values) (filterSet, *apiError) {
	f := filterSet{}
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		name, ok := form[p+".Name"]
		if !ok {
			return f, nil
		}
		vals := indexed(form, p+".Value")
		n := name[0]
		if !strings.HasPrefix(n, "tag:") && n != "tag-key" && n != "instance-state-name" && n != "client-token" {
			return nil, &apiError{http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", n)}
		}
		f[n] = append(f[n], vals...)
	}
}

func (f filterSet) match(in *Instance) bool {
	for name, vals := range f {
		var have []string
		switch {
		case strings.HasPrefix(name, "tag:"):
			v, ok := in.Tags[strings.TrimPrefix(name, "tag:")]
			if !ok {
				return false
			}
			have = []string{v}
		case name == "tag-key":
			for k := range in.Tags {
				have = append(have, k)
			}
		case name == "instance-state-name":
			have = []string{in.State}
		case name == "client-token":
			have = []string{in.ClientToken}
		}
		if !anyEqual(have, vals) {
			return false
		}
	}
	return true
}

func anyEqual(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

func (s *Server) terminateInstances(form url.Values) (any, *apiError) {
	ids := indexed(form, "InstanceId")
	if len(ids) == 0 {
		return nil, &apiError{http.StatusBadRequest, "MissingParameter", "The request must contain the parameter InstanceId"}
	}
	if err := checkIDs(ids); err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if !s.visible(id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, notFound(missing)
	}
	resp := terminateResponse{}
	for _, id := range ids {
		in := s.instances[id]
		prev := in.State
		if in.State != "terminated" {
			in.State = "terminated"
			in.StateReason = "Client.UserInitiatedShutdown: User initiated shutdown"
			in.PublicIP, in.PublicDNS = "", ""
		}
		cur := "shutting-down"
		if prev == "terminated" {
			cur = "terminated"
		}
		resp.Changes = append(resp.Changes, stateChange{ID: id, Current: stateOf(cur), Previous: stateOf(prev)})
	}
	return resp, nil
}

// XML shapes, as EC2 answers (element names are those the SDK's deserialisers read).

type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

func stateOf(name string) xmlState { return xmlState{Code: stateCodes[name], Name: name} }

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlGroup struct {
	GroupID string `xml:"groupId"`
}

type xmlStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xmlInstance struct {
	InstanceID     string          `xml:"instanceId"`
	ImageID        string          `xml:"imageId"`
	State          xmlState        `xml:"instanceState"`
	PrivateDNSName string          `xml:"privateDnsName"`
	DNSName        string          `xml:"dnsName"`
	Reason         string          `xml:"reason"`
	KeyName        string          `xml:"keyName,omitempty"`
	AmiLaunchIndex int             `xml:"amiLaunchIndex"`
	InstanceType   string          `xml:"instanceType"`
	LaunchTime     string          `xml:"launchTime"`
	SubnetID       string          `xml:"subnetId,omitempty"`
	PrivateIP      string          `xml:"privateIpAddress,omitempty"`
	PublicIP       string          `xml:"ipAddress,omitempty"`
	Groups         []xmlGroup      `xml:"groupSet>item"`
	StateReason    *xmlStateReason `xml:"stateReason,omitempty"`
	ClientToken    string          `xml:"clientToken"`
	Tags           []xmlTag        `xml:"tagSet>item,omitempty"`
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []xmlGroup    `xml:"groupSet>item"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type runResponse struct {
	XMLName   xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ RunInstancesResponse"`
	RequestID string   `xml:"requestId"`
	xmlReservation
}

type describeResponse struct {
	XMLName      xml.Name         `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeInstancesResponse"`
	RequestID    string           `xml:"requestId"`
	Reservations []xmlReservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type stateChange struct {
	ID       string   `xml:"instanceId"`
	Current  xmlState `xml:"currentState"`
	Previous xmlState `xml:"previousState"`
}

type terminateResponse struct {
	XMLName   xml.Name      `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ TerminateInstancesResponse"`
	RequestID string        `xml:"requestId"`
	Changes   []stateChange `xml:"instancesSet>item"`
}

const ownerID = "123456789012"

func xmlInstanceOf(in *Instance) xmlInstance {
	x := xmlInstance{
		InstanceID: in.ID, ImageID: in.ImageID, State: stateOf(in.State), DNSName: in.PublicDNS,
		KeyName: in.KeyName, InstanceType: in.InstanceType, LaunchTime: in.LaunchTime.UTC().Format("2006-01-02T15:04:05.000Z"),
		SubnetID: in.SubnetID, PrivateIP: in.PrivateIP, PublicIP: in.PublicIP, ClientToken: in.ClientToken,
	}
	if in.PrivateIP != "" {
		x.PrivateDNSName = "ip-" + strings.ReplaceAll(in.PrivateIP, ".", "-") + ".ec2.internal"
	}
	for _, g := range in.SecurityGroupIDs {
		x.Groups = append(x.Groups, xmlGroup{GroupID: g})
	}
	if in.StateReason != "" {
		code, _, _ := strings.Cut(in.StateReason, ":")
		x.StateReason = &xmlStateReason{Code: code, Message: in.StateReason}
	}
	keys := make([]string, 0, len(in.Tags))
	for k := range in.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.Tags = append(x.Tags, xmlTag{Key: k, Value: in.Tags[k]})
	}
	return x
}

func reservationOf(in *Instance) xmlReservation {
	return xmlReservation{ReservationID: in.ReservationID, OwnerID: ownerID, Instances: []xmlInstance{xmlInstanceOf(in)}}
}

func runResponseOf(in *Instance) runResponse {
	return runResponse{RequestID: "req-fake-run", xmlReservation: reservationOf(in)}
}
