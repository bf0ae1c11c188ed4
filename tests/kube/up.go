package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/version"
)

const (
	// The service network is only a range the apiserver allocates ClusterIPs from: nothing in
	// this control plane routes traffic to it.
	serviceCIDR = "10.96.0.0/16"
	serviceIP   = "10.96.0.1"
	issuer      = "https://kubernetes.default.svc.cluster.local"

	startTimeout = 3 * time.Minute
	stopTimeout  = 15 * time.Second
)

// ClusterInfo is written to <dir>/cluster.json once the control plane is ready; the Rust test kit
// and the quickstart read it.
type ClusterInfo struct {
	Server     string   `json:"server"`
	Kubeconfig string   `json:"kubeconfig"`
	CACert     string   `json:"ca_cert"`
	Version    string   `json:"version"`
	Logs       string   `json:"logs"`
	Nodes      []string `json:"nodes"`
	Pid        int      `json:"pid"`
}

// component is a child process of the supervisor. exited is closed once it has been reaped, and
// err then says how it ended.
type component struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func runUp(args []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := fs.String("dir", "", "state directory: PKI, etcd data, kubeconfigs, logs (required)")
	nodes := fs.Int("nodes", 2, "number of simulated nodes")
	exitWithStdin := fs.Bool("exit-with-stdin", false, "shut down when standard input closes "+
		"(lets a parent that dies without cleaning up take the control plane with it)")
	ephemeral := fs.Bool("ephemeral", false, "remove the state directory on shutdown (for test runs)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "localkube up: --dir is required")
		return 2
	}
	stateDir, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "localkube up: %v\n", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *exitWithStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}

	up := &controlPlane{dir: stateDir, nodes: *nodes}
	err = up.start(ctx)
	if err == nil {
		err = up.wait(ctx)
	}
	up.stop()
	if *ephemeral {
		if rmErr := os.RemoveAll(stateDir); rmErr != nil {
			fmt.Fprintf(os.Stderr, "localkube up: remove %s: %v\n", stateDir, rmErr)
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "localkube up: %v\n", err)
		return 1
	}
	return 0
}

type controlPlane struct {
	dir        string
	nodes      int
	pki        pki
	etcd       *embed.Etcd
	components []*component
	simulator  *nodeSimulator
	cancelSim  context.CancelFunc
}

func (c *controlPlane) logDir() string { return filepath.Join(c.dir, "logs") }

func (c *controlPlane) start(ctx context.Context) error {
	c.pki = pki{dir: filepath.Join(c.dir, "pki")}
	if err := c.pki.ensure(); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.MkdirAll(c.logDir(), 0o755); err != nil {
		return err
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]

	if err := c.startEtcd(etcdClient, etcdPeer); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	if err := c.spawn("kube-apiserver",
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(etcdClient),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+c.pki.path(apiserverCert),
		"--tls-private-key-file="+c.pki.path(apiserverKey),
		"--client-ca-file="+c.pki.path(caCert),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer="+issuer,
		"--api-audiences="+issuer,
		"--service-account-key-file="+c.pki.path(serviceAccountPub),
		"--service-account-signing-key-file="+c.pki.path(serviceAccountKey),
		"--service-cluster-ip-range="+serviceCIDR,
		// Endpoints of the `kubernetes` Service may not be loopback addresses; nothing here
		// routes to them, so the reconciler is off rather than failing forever.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
		"--cert-dir="+filepath.Join(c.dir, "apiserver"),
	); err != nil {
		return err
	}
	if err := c.waitAPIServer(ctx, server); err != nil {
		return err
	}

	admin, err := c.writeKubeconfig("admin.kubeconfig", server, adminIdentity)
	if err != nil {
		return err
	}
	cmKubeconfig, err := c.writeKubeconfig("kube-controller-manager.kubeconfig", server, controllerManagerIdentity)
	if err != nil {
		return err
	}
	schedKubeconfig, err := c.writeKubeconfig("kube-scheduler.kubeconfig", server, schedulerIdentity)
	if err != nil {
		return err
	}
	if err := c.spawn("kube-controller-manager",
		"--kubeconfig="+cmKubeconfig,
		"--authentication-kubeconfig="+cmKubeconfig,
		"--authorization-kubeconfig="+cmKubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+c.pki.path(serviceAccountKey),
		"--root-ca-file="+c.pki.path(caCert),
		"--cluster-signing-cert-file="+c.pki.path(caCert),
		"--cluster-signing-key-file="+c.pki.path(caKey),
		"--cluster-name=localkube",
		"--controllers=*",
		"--profiling=false",
	); err != nil {
		return err
	}
	if err := c.spawn("kube-scheduler",
		"--kubeconfig="+schedKubeconfig,
		"--authentication-kubeconfig="+schedKubeconfig,
		"--authorization-kubeconfig="+schedKubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--profiling=false",
	); err != nil {
		return err
	}

	restConfig, err := clientcmd.BuildConfigFromFlags("", admin)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	simCtx, cancel := context.WithCancel(context.Background())
	c.cancelSim = cancel
	c.simulator = newNodeSimulator(client, c.nodes, version.Get().GitVersion)
	if err := c.simulator.start(simCtx); err != nil {
		return fmt.Errorf("node simulator: %w", err)
	}
	// The controller manager is working once its ServiceAccount controller has created the
	// default ServiceAccount; Pods cannot be admitted into a namespace before that.
	if err := c.waitFor(ctx, "the default ServiceAccount (kube-controller-manager)", func(ctx context.Context) bool {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}); err != nil {
		return err
	}

	info := ClusterInfo{
		Server:     server,
		Kubeconfig: admin,
		CACert:     c.pki.path(caCert),
		Version:    version.Get().GitVersion,
		Logs:       c.logDir(),
		Nodes:      c.simulator.nodeNames(),
		Pid:        os.Getpid(),
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.dir, "cluster.json.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "cluster.json")); err != nil {
		return err
	}
	fmt.Printf("localkube ready: Kubernetes %s at %s, kubeconfig %s\n", info.Version, server, admin)
	return nil
}

// wait blocks until shutdown is asked for or a component dies.
func (c *controlPlane) wait(ctx context.Context) error {
	cases := make(chan error, len(c.components))
	for _, comp := range c.components {
		go func() {
			<-comp.exited
			cases <- fmt.Errorf("%s exited (%v); see %s", comp.name, comp.err, c.logFile(comp.name))
		}()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-cases:
		return err
	}
}

// stop shuts the components down in reverse start order, then etcd.
func (c *controlPlane) stop() {
	if c.cancelSim != nil {
		c.cancelSim()
		c.simulator.wait()
	}
	for i := len(c.components) - 1; i >= 0; i-- {
		comp := c.components[i]
		_ = comp.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-comp.exited:
		case <-time.After(stopTimeout):
			_ = comp.cmd.Process.Kill()
			<-comp.exited
		}
	}
	if c.etcd != nil {
		c.etcd.Close()
	}
	_ = os.Remove(filepath.Join(c.dir, "cluster.json"))
}

func (c *controlPlane) logFile(name string) string { return filepath.Join(c.logDir(), name+".log") }

// spawn starts this binary in another role. It must run on the main goroutine (see init).
func (c *controlPlane) spawn(role string, args ...string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	log, err := os.Create(c.logFile(role))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(self, append([]string{role}, args...)...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", role, err)
	}
	comp := &component{name: role, cmd: cmd, exited: make(chan struct{})}
	go func() {
		comp.err = cmd.Wait()
		close(comp.exited)
	}()
	c.components = append(c.components, comp)
	return nil
}

func (c *controlPlane) startEtcd(clientPort, peerPort int) error {
	cfg := embed.NewConfig()
	cfg.Name = "localkube"
	cfg.Dir = filepath.Join(c.dir, "etcd")
	clientURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// A test cluster trades durability across power loss for speed.
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{c.logFile("etcd")}
	if exists(filepath.Join(cfg.Dir, "member")) {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	c.etcd = e
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return err
	case <-time.After(startTimeout):
		return errors.New("etcd did not become ready")
	}
}

func (c *controlPlane) waitAPIServer(ctx context.Context, server string) error {
	caPEM, err := os.ReadFile(c.pki.path(caCert))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(c.pki.path(adminIdentity.file+".crt"), c.pki.path(adminIdentity.file+".key"))
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}},
	}
	return c.waitFor(ctx, "kube-apiserver /readyz", func(ctx context.Context) bool {
		resp, err := client.Get(server + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// waitFor polls a readiness check: this is the supervisor waiting for a component it started,
// and a component that dies meanwhile fails the wait at once.
func (c *controlPlane) waitFor(ctx context.Context, what string, ready func(context.Context) bool) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if ready(ctx) {
			return nil
		}
		for _, comp := range c.components {
			select {
			case <-comp.exited:
				return fmt.Errorf("%s exited (%v) while waiting for %s; see %s", comp.name, comp.err, what, c.logFile(comp.name))
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s; logs in %s", startTimeout, what, c.logDir())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *controlPlane) writeKubeconfig(name, server string, id clientIdentity) (string, error) {
	path := filepath.Join(c.dir, name)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["localkube"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: c.pki.path(caCert)}
	cfg.AuthInfos[id.user] = &clientcmdapi.AuthInfo{
		ClientCertificate: c.pki.path(id.file + ".crt"),
		ClientKey:         c.pki.path(id.file + ".key"),
	}
	cfg.Contexts["localkube"] = &clientcmdapi.Context{Cluster: "localkube", AuthInfo: id.user, Namespace: "default"}
	cfg.CurrentContext = "localkube"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", err
	}
	// Embed the credentials so the kubeconfig can be copied elsewhere and still work.
	loaded, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return "", err
	}
	if err := clientcmdapi.FlattenConfig(loaded); err != nil {
		return "", err
	}
	return path, clientcmd.WriteToFile(*loaded, path)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
