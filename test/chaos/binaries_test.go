package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

// serviceNames are Orca's four services, each a binary built from cmd/.
var serviceNames = []string{"scheduler", "dispatcher", "watcher", "actions"}

// buildBinaries builds the four services and natsd into dir.
func buildBinaries(ctx context.Context, dir string) error {
	pkgs := []string{"./test/chaos/natsd"}
	for _, s := range serviceNames {
		pkgs = append(pkgs, "./cmd/"+s)
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w: %s", pkgs, err, out)
	}
	return nil
}

// freeAddr returns a loopback address with a port that is free now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// natsNodes starts size nats-servers (natsd) on their own stores; with more than
// one they form a cluster. The ports stay the same across restarts.
func natsNodes(bin, dir string, size int, say func(string, ...any)) ([]*proc, []string, error) {
	var clients, routes, clusters []string
	for range size {
		c, err := freeAddr()
		if err != nil {
			return nil, nil, err
		}
		clients = append(clients, c)
		if size > 1 {
			r, err := freeAddr()
			if err != nil {
				return nil, nil, err
			}
			clusters = append(clusters, r)
			routes = append(routes, "nats-route://"+r)
		}
	}
	var nodes []*proc
	var urls []string
	for i, addr := range clients {
		name := "nats-" + strconv.Itoa(i)
		args := []string{"-addr", addr, "-store", filepath.Join(dir, name), "-name", name}
		if size > 1 {
			args = append(args, "-cluster", clusters[i], "-routes", strings.Join(routes, ","))
		}
		nodes = append(nodes, &proc{
			name: name, path: filepath.Join(bin, "natsd"), args: args,
			log: filepath.Join(dir, name+".log"), say: say,
			ready: func(ctx context.Context) bool {
				conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
				if err == nil {
					_ = conn.Close()
				}
				return err == nil
			},
		})
		urls = append(urls, "nats://"+addr)
	}
	return nodes, urls, nil
}

// serviceProcs returns replicas processes of each of Orca's services, started
// against kubeconfig and the NATS URLs, each with its own readiness port. With
// several replicas the scheduler and the watcher elect a leader; with several
// NATS nodes the stream is replicated (R3 at most).
func serviceProcs(bin, dir, kubeconfig string, natsURLs []string, replicas int, leaseNamespace string, say func(string, ...any)) ([]*proc, error) {
	var procs []*proc
	for _, svc := range serviceNames {
		for i := range replicas {
			probe, err := freeAddr()
			if err != nil {
				return nil, err
			}
			name := svc
			if replicas > 1 {
				name += "-" + strconv.Itoa(i)
			}
			args := []string{
				"--kubeconfig", kubeconfig, "--nats-url", strings.Join(natsURLs, ","),
				"--health-probe-bind-address", probe, "--metrics-bind-address", "0",
			}
			if len(natsURLs) > 1 {
				args = append(args, "--stream-replicas", strconv.Itoa(min(len(natsURLs), 3)))
			}
			if svc == "actions" {
				// The webhook receiver listens on this host, which webhooks may
				// not reach unless allowed.
				args = append(args, "--webhook-allowed-cidrs=127.0.0.0/8")
			}
			if replicas > 1 && (svc == "scheduler" || svc == "watcher") {
				args = append(args, "--leader-elect", "--leader-election-namespace", leaseNamespace)
			}
			procs = append(procs, &proc{
				name: name, path: filepath.Join(bin, svc), args: args,
				log: filepath.Join(dir, name+".log"), say: say,
				ready: func(ctx context.Context) bool { return httpOK(ctx, "http://"+probe+"/readyz") },
			})
		}
	}
	return procs, nil
}

// httpOK reports whether a GET of url answers 200.
func httpOK(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// serviceOf returns the service a process belongs to ("dispatcher-1" -> "dispatcher").
func serviceOf(p *proc) string {
	for _, s := range serviceNames {
		if p.name == s || strings.HasPrefix(p.name, s+"-") {
			return s
		}
	}
	return p.name
}

// startAll starts the processes and waits until each is ready.
func startAll(ctx context.Context, procs []*proc, timeout time.Duration) error {
	for _, p := range procs {
		if err := p.start(); err != nil {
			return err
		}
	}
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.waitReady(ctx, timeout))
	}
	return errors.Join(errs...)
}
