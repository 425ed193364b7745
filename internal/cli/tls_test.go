package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/config"
	"github.com/redpg/redpg/internal/testenv"
)

// writeTLSFiles creates a private CA and a server certificate for
// 127.0.0.1 signed by it, and returns the paths of the CA, cert and key.
func writeTLSFiles(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redpg test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	require.NoError(t, err)
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644))
		return path
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// startTLSRedis runs a private redis-server that speaks only TLS, with an
// ACL user "redpg" whose password is password, and returns its port.
func startTLSRedis(t *testing.T, caFile, certFile, keyFile, password string) int {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (scripts/services.sh installs it): %v", err)
	}
	port := testenv.FreePort(t)
	cmd := exec.Command(bin, "--port", "0", "--tls-port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		"--user", "redpg", "on", ">"+password, "~*", "&*", "+@all", "--user", "default", "off")
	logPath := filepath.Join(t.TempDir(), "redis.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pemData, err := os.ReadFile(caFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pemData))
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Username: "redpg", Password: password,
		TLSConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}, MaxRetries: -1})
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := client.Ping(context.Background()).Err()
		if err == nil {
			return port
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("TLS redis-server did not come up: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTLSAndACL runs the pipeline over TLS to both servers: PostgreSQL with
// sslmode=require and a TLS-only Redis reached as an ACL user through
// rediss:// with a private CA. Neither password may appear in any output.
func TestTLSAndACL(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	const redisPassword = "Tls-Acl-Secret-9931"
	caFile, certFile, keyFile := writeTLSFiles(t)
	port := startTLSRedis(t, caFile, certFile, keyFile, redisPassword)

	pgURL, err := url.Parse(testenv.DatabaseURL())
	require.NoError(t, err)
	pgURL.Host = "127.0.0.1:5432" // TLS needs TCP, not the socket
	q := pgURL.Query()
	q.Set("sslmode", "require")
	pgURL.RawQuery = q.Encode()

	// The driver really negotiates TLS with this URL.
	pc, err := config.ParseDatabaseURL(pgURL.String())
	require.NoError(t, err)
	pool := testenv.Pool(t, pc.ConnString(), 1)
	var ssl bool
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl))
	require.True(t, ssl, "sslmode=require must give an encrypted connection")

	redisURL := fmt.Sprintf("rediss://redpg:%s@127.0.0.1:%d/0", redisPassword, port)
	runWith := func(redisURL string, args ...string) (string, string, int) {
		args = append(args, "--database-url", pgURL.String(), "--redis-url", redisURL, "--redis-ca-file", caFile,
			"--schema", env.Schema, "--key-prefix", env.Prefix, "--env-file", "/nonexistent")
		var stdout, stderr bytes.Buffer
		code := Execute(context.Background(), args, &stdout, &stderr)
		return stdout.String(), stderr.String(), code
	}
	run := func(args ...string) (string, string, int) { return runWith(redisURL, args...) }
	var all strings.Builder
	for _, args := range [][]string{
		{"generate", "--count", "300", "--duplicates", "0.1"},
		{"process", "--workers", "2", "--until-empty"},
		{"reconcile"},
	} {
		out, errOut, code := run(args...)
		all.WriteString(out + errOut)
		require.Equal(t, 0, code, "%v: %s%s", args, out, errOut)
	}
	out, errOut, code := run("stats", "--json")
	all.WriteString(out + errOut)
	require.Equal(t, 0, code, errOut)
	var stats map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &stats))
	require.Positive(t, stats["production_rows"])
	require.Equal(t, stats["produced_total"], stats["production_rows"].(float64)+stats["duplicates_total"].(float64))

	// A wrong password fails with a clear, redacted message.
	badURL := strings.Replace(redisURL, redisPassword, "Wrong-Password-7731", 1)
	_, errOut, code = runWith(badURL, "stats")
	all.WriteString(errOut)
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "refused the credentials")

	require.NotContains(t, all.String(), redisPassword)
	require.NotContains(t, all.String(), "Wrong-Password-7731")
}
