package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeTLS checks the HTTPS proxy listener serves with the configured
// certificate.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	l := listen(t)
	tlsAddr := l.Addr().String()
	l.Close()
	cfg := Config{AdminKey: "0123456789abcdef0123456789abcdef-tls", DataDir: dir, AccessLog: "off",
		TLSCert: certFile, TLSKey: keyFile, TLSListen: tlsAddr, ShutdownTimeout: 2 * time.Second}
	serveTest(t, cfg)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 2 * time.Second}
	var resp *http.Response
	var err error
	for i := 0; i < 50; i++ {
		resp, err = client.Get("https://" + tlsAddr + "/healthz")
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("status %d tls %v", resp.StatusCode, resp.TLS != nil)
	}
}

func writeSelfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cf, kf
}

// TestTLSListenerFailureClosesListeners: when the HTTPS listener cannot be
// opened, Serve fails and closes the proxy and admin listeners it was
// given (they used to stay open, bound, with nobody serving them).
func TestTLSListenerFailureClosesListeners(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	taken := listen(t) // the TLS address is in use
	defer taken.Close()
	cfg := Config{AdminKey: "0123456789abcdef0123456789abcdef-tls", DataDir: dir, AccessLog: "off",
		TLSCert: certFile, TLSKey: keyFile, TLSListen: taken.Addr().String(), ShutdownTimeout: 2 * time.Second}
	srv, err := New(context.Background(), cfg, nil, Version{})
	if err != nil {
		t.Fatal(err)
	}
	pl, al := listen(t), listen(t)
	if err := srv.Serve(context.Background(), pl, al); err == nil || !strings.Contains(err.Error(), "TLS listener") {
		t.Fatalf("Serve = %v", err)
	}
	for _, l := range []net.Listener{pl, al} {
		again, err := net.Listen("tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("%s still bound after Serve failed: %v", l.Addr(), err)
		}
		again.Close()
	}
	if srv.store != nil {
		t.Fatal("the store was left open")
	}
}
