package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// KubeletClient is how kube-apiserver proves itself to a kubelet, as in a real
// cluster: a client certificate signed by a CA that the kubelet trusts (the
// kubelet's --client-ca-file). The CA's key signs that one certificate and is
// then forgotten, so nothing else can ever be signed by it.
type KubeletClient struct {
	// CertFile and KeyFile are the API server's client certificate and key.
	CertFile, KeyFile string
	// CAs is the pool a kubelet (the node agent) verifies client certificates with.
	CAs *x509.CertPool
}

// NewKubeletClient makes a CA and the API server's client certificate, and writes
// the certificate and its key into dir (readable by the owner only).
func NewKubeletClient(dir string) (*KubeletClient, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate kubelet client CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "orca-kubelet-client-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create kubelet client CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate kubelet client key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver-kubelet-client"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create kubelet client certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	k := &KubeletClient{
		CertFile: filepath.Join(dir, "kubelet-client.crt"),
		KeyFile:  filepath.Join(dir, "kubelet-client.key"),
		CAs:      x509.NewCertPool(),
	}
	k.CAs.AddCert(ca)
	if err := os.WriteFile(k.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(k.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// APIServerArgs are the kube-apiserver flags that present the certificate to
// kubelets.
func (k *KubeletClient) APIServerArgs() map[string]string {
	return map[string]string{"kubelet-client-certificate": k.CertFile, "kubelet-client-key": k.KeyFile}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err)
	}
	return n
}
