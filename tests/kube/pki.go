package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the control plane's certificate authority and the key material every component needs.
// It is generated once per state directory and reused, so a restarted `up` keeps its kubeconfigs
// valid. ECDSA P-256 keeps generation instant.
type pki struct {
	dir string
}

// Files in the pki directory.
const (
	caCert            = "ca.crt"
	caKey             = "ca.key"
	serviceAccountKey = "sa.key"
	serviceAccountPub = "sa.pub"
	apiserverCert     = "apiserver.crt"
	apiserverKey      = "apiserver.key"
)

// clientIdentity is a component that authenticates to the apiserver with a client certificate.
type clientIdentity struct {
	file   string // base name of its .crt/.key
	user   string // certificate CN, the Kubernetes user name
	groups []string
}

var (
	adminIdentity             = clientIdentity{"admin", "localkube-admin", []string{"system:masters"}}
	controllerManagerIdentity = clientIdentity{"kube-controller-manager", "system:kube-controller-manager", nil}
	schedulerIdentity         = clientIdentity{"kube-scheduler", "system:kube-scheduler", nil}
)

func (p pki) path(name string) string { return filepath.Join(p.dir, name) }

// ensure creates whatever is missing. An existing CA is kept so old credentials stay valid.
func (p pki) ensure() error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	if !exists(p.path(caCert)) {
		if err := p.createCA(); err != nil {
			return fmt.Errorf("create CA: %w", err)
		}
	}
	ca, caPriv, err := p.loadCA()
	if err != nil {
		return err
	}
	if !exists(p.path(serviceAccountKey)) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		if err := writeKey(p.path(serviceAccountKey), key); err != nil {
			return err
		}
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return err
		}
		if err := writePEM(p.path(serviceAccountPub), "PUBLIC KEY", pub); err != nil {
			return err
		}
	}
	if !exists(p.path(apiserverCert)) {
		serving := &x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP(serviceIP)},
		}
		if err := p.issue(serving, ca, caPriv, apiserverCert, apiserverKey); err != nil {
			return err
		}
	}
	for _, id := range []clientIdentity{adminIdentity, controllerManagerIdentity, schedulerIdentity} {
		if exists(p.path(id.file + ".crt")) {
			continue
		}
		client := &x509.Certificate{
			Subject:     pkix.Name{CommonName: id.user, Organization: id.groups},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if err := p.issue(client, ca, caPriv, id.file+".crt", id.file+".key"); err != nil {
			return err
		}
	}
	return nil
}

func (p pki) createCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "localkube-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := writeKey(p.path(caKey), key); err != nil {
		return err
	}
	return writePEM(p.path(caCert), "CERTIFICATE", der)
}

func (p pki) loadCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(p.path(caCert))
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(p.path(caKey))
	if err != nil {
		return nil, nil, err
	}
	certBlock, _ := pem.Decode(certPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if certBlock == nil || keyBlock == nil {
		return nil, nil, errors.New("CA files are not PEM")
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func (p pki) issue(tmpl, ca *x509.Certificate, caPriv *ecdsa.PrivateKey, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().AddDate(5, 0, 0)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caPriv)
	if err != nil {
		return err
	}
	if err := writeKey(p.path(keyFile), key); err != nil {
		return err
	}
	return writePEM(p.path(certFile), "CERTIFICATE", der)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der)
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
