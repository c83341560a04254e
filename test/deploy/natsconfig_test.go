package deploy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// loadConfig has nats-server process a configuration file and fails on any error
// or warning.
func loadConfig(t *testing.T, file string) *server.Options {
	t.Helper()
	opts := &server.Options{}
	require.NoError(t, opts.ProcessConfigFile(file), "errors and warnings of %s", file)
	return opts
}

// natsConfigDir writes the NATS server's configuration of an install (the files of
// its orca-nats-config ConfigMap) into a folder, as the StatefulSet mounts it, and
// returns the folder.
func natsConfigDir(t *testing.T, install string) string {
	t.Helper()
	objs := objects(t, render(t, install))
	cm := configMap(t, objs, "orca-nats-config")
	require.NotNil(t, cm)
	dir := t.TempDir()
	for name, content := range cm.Data {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	return dir
}

// TestNATSServerLoadsTheDeployedConfig has nats-server parse the configuration that
// the StatefulSet mounts, with the environment it gets: the base's single server,
// and the cluster overlay's three.
func TestNATSServerLoadsTheDeployedConfig(t *testing.T) {
	pw := setPasswords(t)
	t.Setenv("POD_NAME", "orca-nats-1")

	t.Run("base", func(t *testing.T) {
		opts := loadConfig(t, filepath.Join(natsConfigDir(t, deployDir("base")), "nats.conf"))
		assert.Equal(t, "orca-nats-1", opts.ServerName)
		assert.Equal(t, 4222, opts.Port)
		assert.Equal(t, 8222, opts.HTTPPort, "the probes' port")
		assert.True(t, opts.JetStream)
		assert.Equal(t, "/data", opts.StoreDir, "the volume claim's mount")
		assert.Equal(t, "/var/run/nats/nats.pid", opts.PidFile, "the preStop hook's pid file")
		assert.Empty(t, opts.Cluster.Name)
		assert.Nil(t, opts.TLSConfig)
		assert.False(t, opts.NoAuthUser != "", "no anonymous user")
		users := map[string]*server.User{}
		for _, u := range opts.Users {
			users[u.Username] = u
		}
		require.Len(t, users, len(natsUsers))
		for _, name := range natsUsers {
			u := users[name]
			require.NotNil(t, u, name)
			assert.Equal(t, pw[passwordVar(name)], u.Password, "%s's password comes from the environment", name)
			assert.Equal(t, "ORCA", u.Account.Name)
			require.NotNil(t, u.Permissions, name)
		}
	})

	t.Run("nats-cluster", func(t *testing.T) {
		objs := objects(t, render(t, deployDir("overlays", "nats-cluster")))
		routePW := readEnvFile(t, deployDir("overlays", "nats-cluster", "component", "route-credentials.env"))["ORCA_NATS_ROUTE_PASSWORD"]
		require.NotEmpty(t, routePW)
		t.Setenv("ORCA_NATS_ROUTE_PASSWORD", routePW)
		// The kubelet expands $(VAR) in env values from the variables before them.
		sts := typed[appsv1.StatefulSet](t, find(objs, "StatefulSet", "orca-nats"))
		routes := envOf(sts.Spec.Template.Spec.Containers[0])["ORCA_NATS_ROUTES"].Value
		t.Setenv("ORCA_NATS_ROUTES", strings.ReplaceAll(routes, "$(ORCA_NATS_ROUTE_PASSWORD)", routePW))

		opts := loadConfig(t, filepath.Join(natsConfigDir(t, deployDir("overlays", "nats-cluster")), "nats.conf"))
		assert.Equal(t, "orca", opts.Cluster.Name)
		assert.Equal(t, 6222, opts.Cluster.Port)
		assert.Equal(t, "orca-route", opts.Cluster.Username)
		assert.Equal(t, routePW, opts.Cluster.Password)
		assert.True(t, opts.Cluster.NoAdvertise)
		require.Len(t, opts.Routes, 3)
		for i, r := range opts.Routes {
			assert.Equal(t, "orca-nats-"+string(rune('0'+i))+".orca-nats-headless:6222", r.Host)
			p, _ := r.User.Password()
			assert.Equal(t, "orca-route", r.User.Username())
			assert.Equal(t, routePW, p)
		}
		assert.Equal(t, int32(len(opts.Routes)), *sts.Spec.Replicas)
		assert.True(t, opts.JetStream)
		assert.Len(t, opts.Users, len(natsUsers))
	})
}

// writeCerts writes a CA and a server certificate for 127.0.0.1 signed by it, as
// the Secret orca-nats-tls holds them (tls.crt, tls.key, ca.crt).
func writeCerts(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "orca test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "orca-nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"orca-nats", "localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	write := func(name, typ string, der []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	}
	write("ca.crt", "CERTIFICATE", caDER)
	write("tls.crt", "CERTIFICATE", leafDER)
	write("tls.key", "EC PRIVATE KEY", keyDER)
}

// TestNATSWithTLS loads overlays/nats-tls's tls.conf (its Secret's files in a test
// folder) and the deployed users into a nats-server: a service that trusts the CA
// (--nats-tls-ca-file) does its job over TLS; one that does not, cannot connect.
func TestNATSWithTLS(t *testing.T) {
	setPasswords(t)
	certs := t.TempDir()
	writeCerts(t, certs)
	// The whole configuration of the overlay loads, certificates included.
	t.Setenv("POD_NAME", "orca-nats-0")
	cfgDir := natsConfigDir(t, deployDir("overlays", "nats-tls"))
	tlsConf, err := os.ReadFile(filepath.Join(cfgDir, "tls.conf"))
	require.NoError(t, err)
	require.Contains(t, string(tlsConf), "/etc/nats-tls/", "the Secret's mount")
	tlsConf = []byte(strings.ReplaceAll(string(tlsConf), "/etc/nats-tls/", certs+"/"))
	require.NoError(t, os.WriteFile(filepath.Join(cfgDir, "tls.conf"), tlsConf, 0o600))
	opts := loadConfig(t, filepath.Join(cfgDir, "nats.conf"))
	require.NotNil(t, opts.TLSConfig)
	assert.Len(t, opts.Users, len(natsUsers))

	srv := startNATS(t, deployDir("base", "nats", "auth.conf"),
		[2]string{"tls.conf", string(tlsConf)})

	// The Deployments' flag names the CA file.
	objs := objects(t, render(t, deployDir("overlays", "nats-tls")))
	for _, d := range deployments(t, objs) {
		assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--nats-tls-ca-file=/etc/orca/nats-tls/ca.crt")
	}

	scheduler := connect(t, srv, "orca-scheduler", func(o *bus.Options) { o.TLSCAFile = filepath.Join(certs, "ca.crt") })
	require.NoError(t, scheduler.bus.EnsureStream(t.Context(), bus.StreamOptions{}))
	require.NoError(t, scheduler.bus.PublishIgnition(t.Context(), ignition("team-a", "ignitor1", "tls-ig")))
	scheduler.clean(t)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err = bus.Connect(ctx, bus.Options{URLs: []string{srv.URL()}, User: "orca-scheduler", Password: os.Getenv(passwordVar("orca-scheduler"))})
	assert.Error(t, err, "without TLS, no connection")
}
