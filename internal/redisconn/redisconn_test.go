package redisconn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url      string
		topology Topology
		where    string
		tls      bool
	}{
		{"redis://127.0.0.1:6379/0", Single, "127.0.0.1:6379 db 0", false},
		{"rediss://u:pw@cache:6380/2", Single, "cache:6380 db 2", true},
		{"redis://h1:7000?addr=h2:7001&addr=h3:7002", Cluster, "cluster h1:7000,h2:7001,h3:7002", false},
		{"rediss://:pw@h1:7000/0?addr=h2:7001", Cluster, "cluster h1:7000,h2:7001", true},
		{"redis-sentinel://s1:26379,s2:26380,s3/mymaster", Sentinel, `master "mymaster" via sentinels s1:26379,s2:26380,s3:26379 db 0`, false},
		{"redis-sentinel://:pw@s1:26379/mymaster/3", Sentinel, `master "mymaster" via sentinels s1:26379 db 3`, false},
		{"rediss-sentinel://u:pw@s1:26379/m?db=4&sentinel_password=spw", Sentinel, `master "m" via sentinels s1:26379 db 4`, true},
	}
	for _, tc := range tests {
		got, err := Parse(tc.url)
		require.NoError(t, err, tc.url)
		require.Equal(t, tc.topology, got.Topology, tc.url)
		require.Equal(t, tc.where, got.String(), tc.url)
		require.Equal(t, tc.tls, got.TLS(), tc.url)
		require.NotContains(t, got.String(), "pw", tc.url)
	}
}

func TestParseSentinelCredentials(t *testing.T) {
	t.Parallel()
	got, err := Parse("redis-sentinel://app:p%40ss@s1:26379,s2:26379/orders?sentinel_username=watch&sentinel_password=spw")
	require.NoError(t, err)
	f := got.failover
	require.Equal(t, "app", f.Username)
	require.Equal(t, "p@ss", f.Password, "userinfo is the master's, percent-decoded")
	require.Equal(t, "watch", f.SentinelUsername)
	require.Equal(t, "spw", f.SentinelPassword)
	require.Equal(t, "orders", f.MasterName)
}

func TestParseRejectsWithReasons(t *testing.T) {
	t.Parallel()
	tests := []struct{ url, want string }{
		{"", "empty"},
		{"127.0.0.1:6379", "want redis://"},
		{"http://h:1", "scheme"},
		{"redis://h1:7000/3?addr=h2:7001", "database 0 only"},
		{"redis://h1:7000?addr=h2:7001&bogus=1", "bogus"},
		{"redis-sentinel://s1:26379", "no master name"},
		{"redis-sentinel://s1:26379/", "no master name"},
		{"redis-sentinel://s1:26379,,s2/m", "two commas"},
		{"redis-sentinel://s1:port/m", "not a port"},
		{"redis-sentinel://s1:26379/m/x", "not a number"},
		{"redis-sentinel://s1:26379/m/1/2", "too many"},
		{"redis-sentinel://s1:26379/m?master_name=x", "unknown option"},
		{"redis-sentinel://:26379/m", "no host"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.url)
		require.Error(t, err, tc.url)
		require.Contains(t, err.Error(), tc.want, tc.url)
	}
}

func TestParseErrorsDoNotQuotePasswords(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"redis-sentinel://u:s3cret@s1:port/m", "redis-sentinel://u:s3cret@s1:1/m/x",
		"redis-sentinel://u:s3cret@s1:1/m?x=1", "redis://u:s3cret@h1:1/5?addr=h2:2"} {
		_, err := Parse(s)
		require.Error(t, err, s)
		require.NotContains(t, err.Error(), "s3cret", s)
	}
}

func TestClusterEnabled(t *testing.T) {
	t.Parallel()
	require.True(t, ClusterEnabled("# Cluster\r\ncluster_enabled:1\r\n"))
	require.False(t, ClusterEnabled("# Cluster\r\ncluster_enabled:0\r\n"))
	require.False(t, ClusterEnabled(""))
}

func TestOpenRefusesCAFileWithoutTLS(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"redis://127.0.0.1:1/0", "redis://127.0.0.1:1?addr=127.0.0.1:2", "redis-sentinel://127.0.0.1:1/m"} {
		tg, err := Parse(s)
		require.NoError(t, err)
		_, err = Open(context.Background(), tg, Options{CAFile: "/nonexistent.pem"})
		require.ErrorContains(t, err, "does not use TLS", s)
	}
}

func TestOpenSingleServerStaysSingle(t *testing.T) {
	t.Parallel()
	url := "redis://127.0.0.1:6379/9"
	tg, err := Parse(url)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rdb, err := Open(ctx, tg, Options{DialTimeout: time.Second})
	if err != nil && strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Redis at %s is not reachable (start it with `make services`): %v", url, err)
	}
	require.NoError(t, err)
	defer rdb.Close()
	require.Equal(t, Single, tg.Topology)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"redis://h:1/0", "redis://h1:1?addr=h2:2", "redis-sentinel://u:p@s1:1,s2:2/m/0?db=1",
		"rediss-sentinel://s/m?sentinel_password=x", "redis-sentinel://@,/", "redis://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := Parse(s)
		if err != nil {
			return
		}
		// Whatever parses has somewhere to connect to.
		if w := tg.String(); w == "" {
			t.Fatalf("%q parses to an empty description", s)
		}
		if tg.Topology == Sentinel && (tg.failover.MasterName == "" || len(tg.failover.SentinelAddrs) == 0) {
			t.Fatalf("%q: sentinel target without master or sentinels", s)
		}
	})
}
