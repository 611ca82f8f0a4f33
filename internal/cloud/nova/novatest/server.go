package novatest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Region is the region of every endpoint in the fake's catalog.
const Region = "RegionOne"

// User is a password user the fake Keystone accepts.
type User struct {
	Name, Password, Domain, ProjectID string
}

// AppCredential is an application credential the fake Keystone accepts.
type AppCredential struct {
	ID, Secret, ProjectID string
}

// Flavor is a Nova flavor.
type Flavor struct {
	ID, Name string
}

// Network is a Neutron network; External ones are floating IP pools.
type Network struct {
	ID, Name string
	External bool
}

// Server is the fake's record of one Nova server. Values returned by Fake methods are
// copies.
type Server struct {
	ID, Name, Status    string
	ImageRef, FlavorRef string
	KeyName             string
	SecurityGroups      []string
	Networks            []string
	Metadata            map[string]string
	// UserData is the decoded user data; RawUserData is the base64 text that arrived.
	UserData, RawUserData string
	// BlockDevices is block_device_mapping_v2 as sent.
	BlockDevices []map[string]any
	// Fault is the fault message shown in ERROR.
	Fault   string
	FixedIP string
	PortID  string
	Created time.Time
}

// FloatingIP is a Neutron floating IP.
type FloatingIP struct {
	ID, Address, NetworkID, PortID, Description string
}

// Fault names for Fail.
const (
	FaultFloatingIPCreate    = "floatingip-create"
	FaultFloatingIPAssociate = "floatingip-associate"
	FaultServerCreate        = "server-create"
)

type fault struct {
	remaining int
	status    int
	msg       string
}

// Fake is the fake cloud. Its methods are safe for concurrent use.
type Fake struct {
	// URL is the root of the fake; IdentityURL is the Keystone v3 endpoint to configure
	// (URL + "/identity/v3").
	URL, IdentityURL string

	srv   *httptest.Server
	clock func() time.Time

	mu            sync.Mutex
	seq           int
	users         []User
	appCreds      []AppCredential
	tokens        map[string]bool
	tokenBodies   []map[string]any
	flavors       []Flavor
	networks      []Network
	servers       map[string]*Server
	order         []string
	fips          map[string]*FloatingIP
	fipOrder      []string
	faults        map[string][]*fault
	loseCreate    int
	calls         map[string]int
	createBodies  []map[string]any
	networkOnline bool
}

// Options configures a Fake.
type Options struct {
	// Clock stamps creation times; default time.Now.
	Clock func() time.Time
}

// New starts the fake with one flavor (m1.small, id "2"), a private network and an
// external network "public" as floating IP pool. Close it when done.
func New(opts Options) *Fake {
	f := &Fake{
		clock:         opts.Clock,
		tokens:        map[string]bool{},
		servers:       map[string]*Server{},
		fips:          map[string]*FloatingIP{},
		faults:        map[string][]*fault{},
		calls:         map[string]int{},
		flavors:       []Flavor{{ID: "1", Name: "m1.tiny"}, {ID: "2", Name: "m1.small"}},
		networks:      []Network{{ID: "net-private", Name: "private"}, {ID: "net-public", Name: "public", External: true}},
		networkOnline: true,
	}
	if f.clock == nil {
		f.clock = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /identity/v3/auth/tokens", f.authTokens)
	mux.HandleFunc("GET /compute/v2.1/flavors/detail", f.authed(f.listFlavors))
	mux.HandleFunc("POST /compute/v2.1/servers", f.authed(f.createServer))
	mux.HandleFunc("GET /compute/v2.1/servers/detail", f.authed(f.listServers))
	mux.HandleFunc("GET /compute/v2.1/servers/{id}", f.authed(f.getServer))
	mux.HandleFunc("DELETE /compute/v2.1/servers/{id}", f.authed(f.deleteServer))
	mux.HandleFunc("GET /network/{$}", f.networkVersions)
	mux.HandleFunc("GET /network/v2.0/networks", f.authed(f.listNetworks))
	mux.HandleFunc("GET /network/v2.0/ports", f.authed(f.listPorts))
	mux.HandleFunc("GET /network/v2.0/floatingips", f.authed(f.listFloatingIPs))
	mux.HandleFunc("POST /network/v2.0/floatingips", f.authed(f.createFloatingIP))
	mux.HandleFunc("PUT /network/v2.0/floatingips/{id}", f.authed(f.updateFloatingIP))
	mux.HandleFunc("DELETE /network/v2.0/floatingips/{id}", f.authed(f.deleteFloatingIP))
	f.srv = httptest.NewServer(mux)
	f.URL = f.srv.URL
	f.IdentityURL = f.URL + "/identity/v3"
	return f
}

// NewT starts a fake that is closed when the test ends.
func NewT(t interface{ Cleanup(func()) }, opts Options) *Fake {
	f := New(opts)
	t.Cleanup(f.Close)
	return f
}

// Close shuts the fake down.
func (f *Fake) Close() { f.srv.Close() }

// AddUser lets a password user authenticate.
func (f *Fake) AddUser(u User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users = append(f.users, u)
}

// AddAppCredential lets an application credential authenticate.
func (f *Fake) AddAppCredential(c AppCredential) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appCreds = append(f.appCreds, c)
}

// AddNetwork adds a network (an external one is a floating IP pool).
func (f *Fake) AddNetwork(n Network) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks = append(f.networks, n)
}

// Fail makes the next n operations of kind (FaultFloatingIPCreate, FaultFloatingIPAssociate,
// FaultServerCreate) fail with status and message.
func (f *Fake) Fail(kind string, n, status int, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[kind] = append(f.faults[kind], &fault{remaining: n, status: status, msg: message})
}

// LoseCreateResponses makes the next n server creates succeed and then close the connection
// without an answer.
func (f *Fake) LoseCreateResponses(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loseCreate += n
}

// ExpireTokens invalidates every issued token, as when tokens expire; the next call with
// one gets 401.
func (f *Fake) ExpireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]bool{}
}

// TokenRequests returns the decoded bodies of every token request, in order.
func (f *Fake) TokenRequests() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.tokenBodies...)
}

// CreateRequests returns the decoded bodies of every server create request, in order.
func (f *Fake) CreateRequests() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.createBodies...)
}

// Calls returns how many requests matched the route pattern (e.g. "POST /compute/v2.1/servers").
func (f *Fake) Calls(pattern string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[pattern]
}

// Servers returns every server, in creation order.
func (f *Fake) Servers() []Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Server, 0, len(f.order))
	for _, id := range f.order {
		if s, ok := f.servers[id]; ok {
			out = append(out, s.clone())
		}
	}
	return out
}

// Server returns the server with id and whether it exists.
func (f *Fake) Server(id string) (Server, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.servers[id]
	if !ok {
		return Server{}, false
	}
	return s.clone(), true
}

// SetStatus sets a server's status (BUILD, ACTIVE, ERROR, SHUTOFF, …) and fault message.
func (f *Fake) SetStatus(id, status, fault string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.servers[id]; s != nil {
		s.Status, s.Fault = status, fault
	}
}

// AddServer inserts a server as if created outside the provider.
func (f *Fake) AddServer(s Server) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.add(s).ID
}

// FloatingIPs returns every allocated floating IP.
func (f *Fake) FloatingIPs() []FloatingIP {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []FloatingIP
	for _, id := range f.fipOrder {
		if ip, ok := f.fips[id]; ok {
			out = append(out, *ip)
		}
	}
	return out
}

func (s *Server) clone() Server {
	c := *s
	c.SecurityGroups = append([]string(nil), s.SecurityGroups...)
	c.Networks = append([]string(nil), s.Networks...)
	c.Metadata = map[string]string{}
	for k, v := range s.Metadata {
		c.Metadata[k] = v
	}
	c.BlockDevices = append([]map[string]any(nil), s.BlockDevices...)
	return c
}

func (f *Fake) add(s Server) *Server {
	f.seq++
	if s.ID == "" {
		s.ID = fmt.Sprintf("5e7a0000-0000-4000-8000-%012d", f.seq)
	}
	if s.Status == "" {
		s.Status = "BUILD"
	}
	if s.Created.IsZero() {
		s.Created = f.clock().UTC().Truncate(time.Second)
	}
	if s.Metadata == nil {
		s.Metadata = map[string]string{}
	}
	s.FixedIP = fmt.Sprintf("10.1.0.%d", f.seq+10)
	s.PortID = fmt.Sprintf("port-%04d", f.seq)
	p := &s
	f.servers[s.ID] = p
	f.order = append(f.order, s.ID)
	return p
}

func (f *Fake) takeFault(kind string) *fault {
	q := f.faults[kind]
	for len(q) > 0 && q[0].remaining <= 0 {
		q = q[1:]
	}
	f.faults[kind] = q
	if len(q) == 0 {
		return nil
	}
	q[0].remaining--
	return q[0]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// novaError writes Nova's error body ({"itemNotFound": {"code": 404, "message": …}}).
func novaError(w http.ResponseWriter, status int, msg string) {
	key := map[int]string{400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}[status]
	if key == "" {
		key = "computeFault"
	}
	writeJSON(w, status, map[string]any{key: map[string]any{"code": status, "message": msg}})
}

// neutronError writes Neutron's error body.
func neutronError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"NeutronError": map[string]any{"type": typ, "message": msg, "detail": ""}})
}

func (f *Fake) authed(h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls[r.Pattern]++
		ok := f.tokens[r.Header.Get("X-Auth-Token")]
		f.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})
			return
		}
		h(w, r)
	}
}

func (f *Fake) networkVersions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT", "links": []any{map[string]any{"href": f.URL + "/network/v2.0/", "rel": "self"}},
	}}})
}

// keystone

func (f *Fake) authTokens(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": 400, "message": "malformed body"}})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["POST /identity/v3/auth/tokens"]++
	f.tokenBodies = append(f.tokenBodies, body)
	unauthorized := func(msg string) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": 401, "title": "Unauthorized", "message": msg}})
	}
	auth, _ := body["auth"].(map[string]any)
	identity, _ := auth["identity"].(map[string]any)
	methods, _ := identity["methods"].([]any)
	if len(methods) != 1 {
		unauthorized("exactly one auth method expected")
		return
	}
	var project, method string
	switch methods[0] {
	case "password":
		method = "password"
		user := dig(identity, "password", "user")
		name, _ := user["name"].(string)
		pw, _ := user["password"].(string)
		domain, _ := dig(user, "domain")["name"].(string)
		scopeProject, _ := dig(auth, "scope", "project")["id"].(string)
		for _, u := range f.users {
			if u.Name == name && u.Password == pw && u.Domain == domain && u.ProjectID == scopeProject {
				project = u.ProjectID
			}
		}
		if project == "" {
			unauthorized("The request you have made requires authentication.")
			return
		}
	case "application_credential":
		method = "application_credential"
		if _, scoped := auth["scope"]; scoped {
			unauthorized("Application credentials cannot request a scope.")
			return
		}
		ac := dig(identity, "application_credential")
		id, _ := ac["id"].(string)
		secret, _ := ac["secret"].(string)
		for _, c := range f.appCreds {
			if c.ID == id && c.Secret == secret {
				project = c.ProjectID
			}
		}
		if project == "" {
			unauthorized("The request you have made requires authentication.")
			return
		}
	default:
		unauthorized(fmt.Sprintf("auth method %v is not supported", methods[0]))
		return
	}
	f.seq++
	token := fmt.Sprintf("tok-%06d", f.seq)
	f.tokens[token] = true
	endpoint := func(url string) []any {
		return []any{map[string]any{"id": "ep", "interface": "public", "region": Region, "region_id": Region, "url": url}}
	}
	now := f.clock().UTC()
	w.Header().Set("X-Subject-Token", token)
	writeJSON(w, http.StatusCreated, map[string]any{"token": map[string]any{
		"methods":    []string{method},
		"issued_at":  now.Format(time.RFC3339),
		"expires_at": now.Add(time.Hour).Format(time.RFC3339),
		"project":    map[string]any{"id": project, "name": "demo", "domain": map[string]any{"id": "default", "name": "Default"}},
		"user":       map[string]any{"id": "u1", "name": "demo", "domain": map[string]any{"id": "default", "name": "Default"}},
		"catalog": []any{
			map[string]any{"type": "identity", "name": "keystone", "id": "s1", "endpoints": endpoint(f.IdentityURL)},
			map[string]any{"type": "compute", "name": "nova", "id": "s2", "endpoints": endpoint(f.URL + "/compute/v2.1")},
			map[string]any{"type": "network", "name": "neutron", "id": "s3", "endpoints": endpoint(f.URL + "/network")},
		},
	}})
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, _ := m[k].(map[string]any)
		if next == nil {
			return map[string]any{}
		}
		m = next
	}
	return m
}

// nova

func (f *Fake) listFlavors(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []any
	for _, fl := range f.flavors {
		out = append(out, map[string]any{"id": fl.ID, "name": fl.Name, "ram": 2048, "vcpus": 1, "disk": 20})
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavors": out})
}

func (f *Fake) createServer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Server map[string]any `json:"server"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Server == nil {
		novaError(w, http.StatusBadRequest, "Malformed request body")
		return
	}
	f.mu.Lock()
	f.createBodies = append(f.createBodies, body.Server)
	if ft := f.takeFault(FaultServerCreate); ft != nil {
		f.mu.Unlock()
		novaError(w, ft.status, ft.msg)
		return
	}
	req := body.Server
	s := Server{Metadata: map[string]string{}}
	s.Name, _ = req["name"].(string)
	s.ImageRef, _ = req["imageRef"].(string)
	s.FlavorRef, _ = req["flavorRef"].(string)
	s.KeyName, _ = req["key_name"].(string)
	if s.Name == "" {
		f.mu.Unlock()
		novaError(w, http.StatusBadRequest, "Invalid input for field/attribute name.")
		return
	}
	found := false
	for _, fl := range f.flavors {
		found = found || fl.ID == s.FlavorRef
	}
	if !found {
		f.mu.Unlock()
		novaError(w, http.StatusBadRequest, fmt.Sprintf("Flavor %s could not be found.", s.FlavorRef))
		return
	}
	bdm, _ := req["block_device_mapping_v2"].([]any)
	for _, b := range bdm {
		if m, ok := b.(map[string]any); ok {
			s.BlockDevices = append(s.BlockDevices, m)
		}
	}
	if s.ImageRef == "" && len(s.BlockDevices) == 0 {
		f.mu.Unlock()
		novaError(w, http.StatusBadRequest, "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.")
		return
	}
	if sgs, ok := req["security_groups"].([]any); ok {
		for _, g := range sgs {
			name, _ := dig(map[string]any{"g": g}, "g")["name"].(string)
			s.SecurityGroups = append(s.SecurityGroups, name)
		}
	}
	if nets, ok := req["networks"].([]any); ok {
		for _, n := range nets {
			uuid, _ := dig(map[string]any{"n": n}, "n")["uuid"].(string)
			s.Networks = append(s.Networks, uuid)
		}
	}
	if md, ok := req["metadata"].(map[string]any); ok {
		for k, v := range md {
			sv, _ := v.(string)
			if len(k) > 255 || len(sv) > 255 {
				f.mu.Unlock()
				novaError(w, http.StatusBadRequest, "Invalid input for field/attribute metadata.")
				return
			}
			s.Metadata[k] = sv
		}
	}
	if ud, ok := req["user_data"].(string); ok {
		b, err := base64.StdEncoding.DecodeString(ud)
		if err != nil || len(ud) > 65535 {
			f.mu.Unlock()
			novaError(w, http.StatusBadRequest, "Invalid input for field/attribute user_data.")
			return
		}
		s.RawUserData, s.UserData = ud, string(b)
	}
	p := f.add(s)
	lose := f.loseCreate > 0
	if lose {
		f.loseCreate--
	}
	f.mu.Unlock()
	if lose {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": p.ID, "adminPass": "not-a-real-password", "links": []any{}, "OS-DCF:diskConfig": "MANUAL",
		"security_groups": []any{map[string]any{"name": "default"}},
	}})
}

func (f *Fake) serverJSON(s *Server) map[string]any {
	addrs := []any{map[string]any{"addr": s.FixedIP, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}}
	for _, id := range f.fipOrder {
		if ip := f.fips[id]; ip != nil && ip.PortID == s.PortID && ip.PortID != "" {
			addrs = append(addrs, map[string]any{"addr": ip.Address, "version": 4, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"})
		}
	}
	m := map[string]any{
		"id": s.ID, "name": s.Name, "status": s.Status, "tenant_id": "demo", "user_id": "u1",
		"created": s.Created.Format(time.RFC3339), "updated": s.Created.Format(time.RFC3339),
		"addresses": map[string]any{"private": addrs}, "metadata": s.Metadata, "key_name": s.KeyName,
		"flavor": map[string]any{"id": s.FlavorRef}, "links": []any{}, "hostId": "h1",
	}
	if s.ImageRef != "" {
		m["image"] = map[string]any{"id": s.ImageRef}
	} else {
		m["image"] = ""
	}
	if s.Fault != "" {
		m["fault"] = map[string]any{"code": 500, "message": s.Fault, "created": s.Created.Format(time.RFC3339)}
	}
	return m
}

func (f *Fake) listServers(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []any{}
	for _, id := range f.order {
		if s, ok := f.servers[id]; ok {
			out = append(out, f.serverJSON(s))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"servers": out})
}

func (f *Fake) getServer(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.servers[r.PathValue("id")]
	if !ok {
		novaError(w, http.StatusNotFound, "Instance "+r.PathValue("id")+" could not be found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"server": f.serverJSON(s)})
}

func (f *Fake) deleteServer(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	s, ok := f.servers[id]
	if !ok {
		novaError(w, http.StatusNotFound, "Instance "+id+" could not be found.")
		return
	}
	// Neutron removes the port with the server, which leaves its floating IP unassociated
	// but allocated: releasing it is the client's job.
	for _, ip := range f.fips {
		if ip.PortID == s.PortID {
			ip.PortID = ""
		}
	}
	delete(f.servers, id)
	w.WriteHeader(http.StatusNoContent)
}

// neutron

func (f *Fake) listNetworks(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	out := []any{}
	for _, n := range f.networks {
		if ext := q.Get("router:external"); ext != "" && ext != fmt.Sprint(n.External) {
			continue
		}
		if name := q.Get("name"); name != "" && name != n.Name {
			continue
		}
		out = append(out, map[string]any{"id": n.ID, "name": n.Name, "router:external": n.External, "status": "ACTIVE", "admin_state_up": true})
	}
	writeJSON(w, http.StatusOK, map[string]any{"networks": out})
}

func (f *Fake) listPorts(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dev := r.URL.Query().Get("device_id")
	out := []any{}
	for _, id := range f.order {
		s, ok := f.servers[id]
		if !ok || (dev != "" && dev != s.ID) {
			continue
		}
		out = append(out, map[string]any{"id": s.PortID, "device_id": s.ID, "network_id": "net-private", "status": "ACTIVE",
			"fixed_ips": []any{map[string]any{"subnet_id": "subnet-private", "ip_address": s.FixedIP}}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"ports": out})
}

func fipJSON(ip *FloatingIP) map[string]any {
	m := map[string]any{"id": ip.ID, "floating_ip_address": ip.Address, "floating_network_id": ip.NetworkID,
		"description": ip.Description, "status": "DOWN", "port_id": nil, "project_id": "demo", "tenant_id": "demo"}
	if ip.PortID != "" {
		m["port_id"] = ip.PortID
		m["status"] = "ACTIVE"
	}
	return m
}

func (f *Fake) listFloatingIPs(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	out := []any{}
	for _, id := range f.fipOrder {
		ip, ok := f.fips[id]
		if !ok {
			continue
		}
		if d := q.Get("description"); d != "" && d != ip.Description {
			continue
		}
		if p := q.Get("port_id"); p != "" && p != ip.PortID {
			continue
		}
		out = append(out, fipJSON(ip))
	}
	writeJSON(w, http.StatusOK, map[string]any{"floatingips": out})
}

func (f *Fake) createFloatingIP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		FloatingIP struct {
			NetworkID   string `json:"floating_network_id"`
			Description string `json:"description"`
		} `json:"floatingip"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		neutronError(w, http.StatusBadRequest, "HTTPBadRequest", "malformed body")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft := f.takeFault(FaultFloatingIPCreate); ft != nil {
		neutronError(w, ft.status, "IpAddressGenerationFailure", ft.msg)
		return
	}
	ext := false
	for _, n := range f.networks {
		ext = ext || (n.ID == body.FloatingIP.NetworkID && n.External)
	}
	if !ext {
		neutronError(w, http.StatusNotFound, "ExternalGatewayForFloatingIPNotFound", "External network "+body.FloatingIP.NetworkID+" is not reachable")
		return
	}
	f.seq++
	ip := &FloatingIP{ID: fmt.Sprintf("fip-%04d", f.seq), Address: fmt.Sprintf("203.0.113.%d", len(f.fipOrder)+20),
		NetworkID: body.FloatingIP.NetworkID, Description: body.FloatingIP.Description}
	f.fips[ip.ID] = ip
	f.fipOrder = append(f.fipOrder, ip.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"floatingip": fipJSON(ip)})
}

func (f *Fake) updateFloatingIP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		FloatingIP struct {
			PortID *string `json:"port_id"`
		} `json:"floatingip"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		neutronError(w, http.StatusBadRequest, "HTTPBadRequest", "malformed body")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ip, ok := f.fips[r.PathValue("id")]
	if !ok {
		neutronError(w, http.StatusNotFound, "FloatingIPNotFound", "Floating IP "+r.PathValue("id")+" could not be found")
		return
	}
	if ft := f.takeFault(FaultFloatingIPAssociate); ft != nil {
		neutronError(w, ft.status, "FloatingIPSetupException", ft.msg)
		return
	}
	if body.FloatingIP.PortID == nil {
		ip.PortID = ""
	} else {
		port := *body.FloatingIP.PortID
		known := false
		for _, s := range f.servers {
			known = known || s.PortID == port
		}
		if !known {
			neutronError(w, http.StatusNotFound, "PortNotFound", "Port "+port+" could not be found.")
			return
		}
		ip.PortID = port
	}
	writeJSON(w, http.StatusOK, map[string]any{"floatingip": fipJSON(ip)})
}

func (f *Fake) deleteFloatingIP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := f.fips[id]; !ok {
		neutronError(w, http.StatusNotFound, "FloatingIPNotFound", "Floating IP "+id+" could not be found")
		return
	}
	delete(f.fips, id)
	w.WriteHeader(http.StatusNoContent)
}
