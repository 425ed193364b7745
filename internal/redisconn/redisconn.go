// Package redisconn turns a REDIS_URL into the go-redis client for the
// topology it names — one server, a Redis Cluster, or a master watched by
// Sentinel — so that everything else holds a redis.UniversalClient and
// never asks which.
//
// Three URL forms:
//
//	redis://[user:password@]host:port[/db]         one server; a cluster if it says so
//	redis://[user:password@]h1:p1?addr=h2:p2&addr=h3:p3   Redis Cluster (go-redis's form)
//	redis-sentinel://[user:password@]s1:26379[,s2:26379...]/master[/db]
//
// rediss:// and rediss-sentinel:// add TLS. A one-server URL whose server
// reports cluster_enabled:1 is opened as a cluster: operators point redpg at
// any node and it follows MOVED and ASK. In the Sentinel form the user and
// password are the master's (the data's) credentials; the sentinels' own,
// when they have them, go in the query as sentinel_username and
// sentinel_password. Query options beyond those are not accepted, so a typo
// is reported, not ignored.
package redisconn

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Topology is the kind of Redis deployment a URL names.
type Topology string

// Topologies.
const (
	Single   Topology = "single"
	Cluster  Topology = "cluster"
	Sentinel Topology = "sentinel"
)

// ClusterStateReload is how old a cluster client's slot map may grow before
// the next command refreshes it (one CLUSTER SLOTS). go-redis refreshes on
// MOVED, but a master that died answers nothing, so until the refresh every
// command for its slots goes to the dead address: go-redis's default of a
// minute kept workers idle that long after a failover had completed.
const ClusterStateReload = 2 * time.Second

// Target is a parsed REDIS_URL: what to connect to, before connecting.
type Target struct {
	// Topology is what the URL says. A Single target may still open as a
	// Cluster when the server reports cluster mode (see Open).
	Topology Topology

	single   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
}

// Parse reads a REDIS_URL in one of the package's three forms. Its own
// errors never quote the URL; go-redis's may, so callers redact them.
func Parse(raw string) (*Target, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("empty")
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("want redis://, rediss://, redis-sentinel:// or rediss-sentinel://")
	}
	switch strings.ToLower(scheme) {
	case "redis-sentinel", "rediss-sentinel":
		return parseSentinel(raw)
	case "redis", "rediss":
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		if u.Query().Has("addr") {
			return parseCluster(u)
		}
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, err
		}
		return &Target{Topology: Single, single: opt}, nil
	case "unix":
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, err
		}
		return &Target{Topology: Single, single: opt}, nil
	default:
		return nil, fmt.Errorf("scheme %q: want redis://, rediss://, redis-sentinel:// or rediss-sentinel://", scheme)
	}
}

// parseCluster reads go-redis's cluster form. A cluster has database 0
// only, so any other database in the path is a mistake worth reporting.
func parseCluster(u *url.URL) (*Target, error) {
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("database %q: Redis Cluster has database 0 only; drop the path from REDIS_URL", p)
	}
	c := *u
	c.Path = ""
	opt, err := redis.ParseClusterURL(c.String())
	if err != nil {
		return nil, err
	}
	return &Target{Topology: Cluster, cluster: opt}, nil
}

// parseSentinel reads redis-sentinel://[user:password@]s1:p1,s2:p2/master[/db].
// url.Parse cannot be trusted with a comma-separated host list, so the
// authority is split by hand.
func parseSentinel(raw string) (*Target, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	opt := &redis.FailoverOptions{}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		info, err := url.Parse("redis://" + authority[:at+1] + "h")
		if err != nil || info.User == nil {
			return nil, errors.New("cannot read the user and password before '@'")
		}
		opt.Username = info.User.Username()
		opt.Password, _ = info.User.Password()
		authority = authority[at+1:]
	}
	for _, a := range strings.Split(authority, ",") {
		if a == "" {
			return nil, errors.New("empty sentinel address (two commas in a row?)")
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			host, port = a, "26379"
		}
		if host == "" {
			return nil, errors.New("a sentinel address has no host")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("sentinel port %q is not a port number", port)
		}
		opt.SentinelAddrs = append(opt.SentinelAddrs, net.JoinHostPort(host, port))
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if segs[0] == "" {
		return nil, errors.New("no master name: want redis-sentinel://host:26379[,host:26379...]/<master name>[/<db>]")
	}
	var err error
	if opt.MasterName, err = url.PathUnescape(segs[0]); err != nil {
		return nil, errors.New("the master name is not a valid URL path segment")
	}
	switch len(segs) {
	case 1:
	case 2:
		if opt.DB, err = strconv.Atoi(segs[1]); err != nil || opt.DB < 0 {
			return nil, fmt.Errorf("database %q is not a number", segs[1])
		}
	default:
		return nil, errors.New("too many path segments: want /<master name>[/<db>]")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errors.New("cannot read the query string")
	}
	for k := range q {
		switch k {
		case "sentinel_username":
			opt.SentinelUsername = q.Get(k)
		case "sentinel_password":
			opt.SentinelPassword = q.Get(k)
		case "db":
			if opt.DB, err = strconv.Atoi(q.Get(k)); err != nil || opt.DB < 0 {
				return nil, fmt.Errorf("db=%q is not a number", q.Get(k))
			}
		default:
			return nil, fmt.Errorf("unknown option %q (want sentinel_username, sentinel_password or db)", k)
		}
	}
	if strings.EqualFold(scheme, "rediss-sentinel") {
		host, _, _ := net.SplitHostPort(opt.SentinelAddrs[0])
		opt.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return &Target{Topology: Sentinel, failover: opt}, nil
}

// String says where the target points, without credentials.
func (t *Target) String() string {
	switch t.Topology {
	case Cluster:
		return "cluster " + strings.Join(t.cluster.Addrs, ",")
	case Sentinel:
		return fmt.Sprintf("master %q via sentinels %s db %d", t.failover.MasterName, strings.Join(t.failover.SentinelAddrs, ","), t.failover.DB)
	default:
		return fmt.Sprintf("%s db %d", t.single.Addr, t.single.DB)
	}
}

// TLS reports whether the target's connections use TLS.
func (t *Target) TLS() bool { return t.tlsConfig() != nil }

func (t *Target) tlsConfig() *tls.Config {
	switch t.Topology {
	case Cluster:
		return t.cluster.TLSConfig
	case Sentinel:
		return t.failover.TLSConfig
	default:
		return t.single.TLSConfig
	}
}

// Options are the connection settings that do not come from the URL.
type Options struct {
	// CAFile is a PEM file of certificate authorities to trust for TLS
	// instead of the system's roots. Only valid with a TLS URL.
	CAFile string
	// PoolSize is the most connections per server. Defaults to go-redis's
	// own default.
	PoolSize int
	// DialTimeout bounds each connection attempt. Defaults to go-redis's.
	DialTimeout time.Duration
}

// Open connects to the target and checks it answers. A Single target whose
// server runs in cluster mode is reopened as a Cluster, seeded with that
// server's address, and t.Topology says so afterwards. The caller closes
// the client.
func Open(ctx context.Context, t *Target, o Options) (redis.UniversalClient, error) {
	if o.CAFile != "" {
		cfg := t.tlsConfig()
		if cfg == nil {
			return nil, errors.New("a CA file is set but the URL does not use TLS (rediss:// or rediss-sentinel://)")
		}
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch t.Topology {
	case Cluster:
		c := *t.cluster
		c.PoolSize, c.DialTimeout = cmp.Or(o.PoolSize, c.PoolSize), cmp.Or(o.DialTimeout, c.DialTimeout)
		c.ClusterStateReloadInterval = ClusterStateReload
		return ping(ctx, redis.NewClusterClient(&c))
	case Sentinel:
		f := *t.failover
		f.PoolSize, f.DialTimeout = cmp.Or(o.PoolSize, f.PoolSize), cmp.Or(o.DialTimeout, f.DialTimeout)
		return ping(ctx, redis.NewFailoverClient(&f))
	}
	s := *t.single
	s.PoolSize, s.DialTimeout = cmp.Or(o.PoolSize, s.PoolSize), cmp.Or(o.DialTimeout, s.DialTimeout)
	rdb, err := ping(ctx, redis.NewClient(&s))
	if err != nil {
		return nil, err
	}
	on, err := clusterEnabled(ctx, rdb)
	if err != nil || !on {
		if err != nil {
			_ = rdb.Close()
		}
		return rdb, err
	}
	_ = rdb.Close()
	if s.DB != 0 {
		return nil, fmt.Errorf("%s runs in cluster mode, which has database 0 only; drop /%d from REDIS_URL", s.Addr, s.DB)
	}
	t.Topology = Cluster
	t.cluster = clusterOptions(&s)
	return ping(ctx, redis.NewClusterClient(t.cluster))
}

// clusterEnabled asks the server whether it is a cluster node. A user the
// ACL denies INFO is taken to be on a plain server: nothing else could be
// learnt, and a cluster would answer its first command with MOVED, which
// the error then shows.
func clusterEnabled(ctx context.Context, rdb redis.UniversalClient) (bool, error) {
	info, err := rdb.Info(ctx, "cluster").Result()
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOPERM") {
			return false, nil
		}
		return false, fmt.Errorf("INFO cluster: %w", err)
	}
	return ClusterEnabled(info), nil
}

// ClusterEnabled reads cluster_enabled from the text of INFO cluster.
func ClusterEnabled(info string) bool {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_enabled:"); ok {
			return v == "1"
		}
	}
	return false
}

// clusterOptions carries a one-server client's settings over to a cluster
// client seeded with that server.
func clusterOptions(s *redis.Options) *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs: []string{s.Addr}, ClientName: s.ClientName, Protocol: s.Protocol,
		Username: s.Username, Password: s.Password, TLSConfig: s.TLSConfig,
		MaxRetries: s.MaxRetries, MinRetryBackoff: s.MinRetryBackoff, MaxRetryBackoff: s.MaxRetryBackoff,
		DialTimeout: s.DialTimeout, ReadTimeout: s.ReadTimeout, WriteTimeout: s.WriteTimeout,
		PoolSize: s.PoolSize, PoolTimeout: s.PoolTimeout, MinIdleConns: s.MinIdleConns, MaxIdleConns: s.MaxIdleConns,
		ConnMaxIdleTime: s.ConnMaxIdleTime, ConnMaxLifetime: s.ConnMaxLifetime,
		ClusterStateReloadInterval: ClusterStateReload,
	}
}

func ping(ctx context.Context, rdb redis.UniversalClient) (redis.UniversalClient, error) {
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	return rdb, nil
}

// UnlinkMatching deletes every key matching pattern, on every master of a
// cluster, a thousand keys at a time, one key per UNLINK so that keys of
// different slots never meet in one command.
func UnlinkMatching(ctx context.Context, rdb redis.UniversalClient, pattern string) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return unlinkOn(ctx, node, pattern)
		})
	}
	return unlinkOn(ctx, rdb, pattern)
}

func unlinkOn(ctx context.Context, rdb redis.Cmdable, pattern string) error {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		pipe := rdb.Pipeline()
		for _, key := range batch {
			pipe.Unlink(ctx, key)
		}
		_, err := pipe.Exec(ctx)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return flush()
}
