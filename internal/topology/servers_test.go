//go:build topology

package topology

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redpg/redpg/internal/testenv"
	"github.com/stretchr/testify/require"
)

// server is a process the test owns, in its own process group so that a
// kill reaches everything it started.
type server struct {
	t    testing.TB
	name string
	port int
	args []string
	bin  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startServer runs bin with args, its output in dir/<name>.log, and kills
// its process group when the test ends.
func startServer(t testing.TB, dir, name string, port int, bin string, args ...string) *server {
	t.Helper()
	s := &server{t: t, name: name, port: port, bin: bin, args: args, log: filepath.Join(dir, name+".log")}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *server) start() {
	t := s.t
	t.Helper()
	out, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer out.Close()
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, s.cmd.Start(), "%s must be installed (scripts/services.sh installs redis-server and redis-sentinel)", s.bin)
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	rdb := s.client()
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			t.Fatalf("%s exited at start-up:\n%s", s.name, s.tail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer PING: %v\n%s", s.name, err, s.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL to the server's process group and waits until it is
// gone.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// addr is the server's host:port.
func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// client is a plain client of this one server, which never follows
// redirections: for asking a node about itself.
func (s *server) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1, DialTimeout: time.Second})
}

// info returns the value of field in the server's INFO section, "" when
// the server does not answer.
func (s *server) info(section, field string) string {
	rdb := s.client()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	text, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return ""
	}
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// tail is the end of the server's log, for failure messages.
func (s *server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// redisArgs are the options every throw-away redis-server gets: no
// persistence, private directory, loopback only.
func redisArgs(dir string, port int, extra ...string) []string {
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""}
	return append(args, extra...)
}

// cluster is a Redis Cluster of three masters, each with one replica.
type cluster struct {
	t     testing.TB
	nodes []*server
}

// startCluster starts six cluster-mode servers, joins them with
// `redis-cli --cluster create --cluster-replicas 1`, and waits until every
// node reports cluster_state:ok and every replica is in sync.
func startCluster(t testing.TB) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t}
	var addrs []string
	for range 6 {
		port := testenv.FreePort(t)
		s := startServer(t, dir, fmt.Sprintf("node-%d", port), port, "redis-server", redisArgs(dir, port,
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)),
			// Two seconds without an answer and a master is failed over:
			// short enough for a test, long enough for a loaded laptop.
			"--cluster-node-timeout", "2000")...)
		c.nodes = append(c.nodes, s)
		addrs = append(addrs, s.addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	require.NoError(t, err, "redis-cli --cluster create:\n%s", out)
	testenv.WaitFor(t, 30*time.Second, "cluster_state:ok on every node with its replicas in sync", func() bool {
		for _, n := range c.nodes {
			if !c.nodeOK(n) {
				return false
			}
			if n.info("replication", "role") == "slave" && n.info("replication", "master_link_status") != "up" {
				return false
			}
		}
		return true
	})
	return c
}

// nodeOK reports whether a node sees the whole cluster as healthy.
func (c *cluster) nodeOK(n *server) bool {
	rdb := n.client()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	text, err := rdb.ClusterInfo(ctx).Result()
	if err != nil || !strings.Contains(text, "cluster_state:ok") || !strings.Contains(text, "cluster_known_nodes:6") {
		return false
	}
	// Gossip also has to tell this node which replica follows which master.
	//lint:ignore SA1019 CLUSTER SLOTS lists each range's master first, then its replicas, which is all this needs; it still exists in Redis 7.
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil || len(slots) == 0 {
		return false
	}
	for _, r := range slots {
		if len(r.Nodes) != 2 {
			return false
		}
	}
	return true
}

// seedURL is a one-address URL: redpg must detect the cluster itself.
func (c *cluster) seedURL() string { return "redis://" + c.nodes[0].addr() + "/0" }

// clusterURL names three nodes in go-redis's cluster form.
func (c *cluster) clusterURL() string {
	return fmt.Sprintf("redis://%s?addr=%s&addr=%s", c.nodes[0].addr(), c.nodes[1].addr(), c.nodes[2].addr())
}

// node returns the server listening on port.
func (c *cluster) node(port int) *server {
	for _, n := range c.nodes {
		if n.port == port {
			return n
		}
	}
	c.t.Fatalf("no cluster node on port %d", port)
	return nil
}

// alive returns a node that still answers.
func (c *cluster) alive() *server {
	for _, n := range c.nodes {
		if n.info("server", "redis_version") != "" {
			return n
		}
	}
	c.t.Fatal("no cluster node answers")
	return nil
}

// owner returns the master serving key's slot and its replicas, as a live
// node sees them.
func (c *cluster) owner(key string) (master *server, replicas []*server) {
	t := c.t
	t.Helper()
	rdb := c.alive().client()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	require.NoError(t, err)
	//lint:ignore SA1019 CLUSTER SLOTS lists each range's master first, then its replicas, which is all this needs; it still exists in Redis 7.
	slots, err := rdb.ClusterSlots(ctx).Result()
	require.NoError(t, err)
	for _, r := range slots {
		if int64(r.Start) <= slot && slot <= int64(r.End) {
			for i, n := range r.Nodes {
				_, p, _ := net.SplitHostPort(n.Addr)
				port, _ := strconv.Atoi(p)
				if i == 0 {
					master = c.node(port)
				} else {
					replicas = append(replicas, c.node(port))
				}
			}
			return master, replicas
		}
	}
	t.Fatalf("slot %d of %s has no owner", slot, key)
	return nil, nil
}

// sentinels is one master, one replica and three Sentinels watching them.
type sentinels struct {
	t       testing.TB
	dir     string
	master  *server
	replica *server
	watch   []*server
}

const sentinelMaster = "redpg-test"

// startSentinels starts the master, its replica and three Sentinels
// (quorum two), and waits until every Sentinel knows the replica and the
// other two Sentinels.
func startSentinels(t testing.TB) *sentinels {
	t.Helper()
	dir := t.TempDir()
	s := &sentinels{t: t, dir: dir}
	mp, rp := testenv.FreePort(t), testenv.FreePort(t)
	s.master = startServer(t, dir, fmt.Sprintf("master-%d", mp), mp, "redis-server", redisArgs(dir, mp)...)
	s.replica = startServer(t, dir, fmt.Sprintf("replica-%d", rp), rp, "redis-server",
		redisArgs(dir, rp, "--replicaof", "127.0.0.1", strconv.Itoa(mp))...)
	bin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		t.Fatalf("redis-sentinel is not installed (Debian package redis-sentinel; scripts/services.sh installs it): %v", err)
	}
	for range 3 {
		port := testenv.FreePort(t)
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", port))
		// Sentinel rewrites its configuration file, so each gets its own.
		text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 1
`, port, dir, sentinelMaster, mp, sentinelMaster, sentinelMaster, sentinelMaster)
		require.NoError(t, os.WriteFile(conf, []byte(text), 0o644))
		s.watch = append(s.watch, startServer(t, dir, fmt.Sprintf("sentinel-%d", port), port, bin, conf))
	}
	testenv.WaitFor(t, 30*time.Second, "the replica in sync and every Sentinel knowing the replica and the other Sentinels", func() bool {
		if s.replica.info("replication", "master_link_status") != "up" {
			return false
		}
		for _, w := range s.watch {
			rdb := w.client()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			reps, err1 := rdb.Do(ctx, "SENTINEL", "REPLICAS", sentinelMaster).Slice()
			others, err2 := rdb.Do(ctx, "SENTINEL", "SENTINELS", sentinelMaster).Slice()
			cancel()
			_ = rdb.Close()
			if err1 != nil || err2 != nil || len(reps) != 1 || len(others) != 2 {
				return false
			}
		}
		return true
	})
	return s
}

// url is the redis-sentinel:// URL naming the three Sentinels.
func (s *sentinels) url() string {
	addrs := make([]string, len(s.watch))
	for i, w := range s.watch {
		addrs[i] = w.addr()
	}
	return "redis-sentinel://" + strings.Join(addrs, ",") + "/" + sentinelMaster + "/0"
}

// masterPort asks a Sentinel which port the master is on now.
func (s *sentinels) masterPort() int {
	rdb := s.watch[0].client()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	addr, err := rdb.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", sentinelMaster).StringSlice()
	if err != nil || len(addr) != 2 {
		return 0
	}
	port, _ := strconv.Atoi(addr[1])
	return port
}
