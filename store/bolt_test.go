package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"disco/registry"
	"disco/store"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// instance returns a valid stored instance of service at addr:80.
func instance(t testing.TB, service, id, addr string) *registry.Instance {
	t.Helper()
	in, err := registry.NewInstance(service, id, registry.Registration{
		Address: addr, Port: 80, Tags: []string{"v2", "blue"}, Meta: map[string]string{"zone": "a"},
		Checks: []registry.Check{{Type: registry.CheckTCP, Address: net.JoinHostPort(addr, "80")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	in.Revision = 1
	in.Registered = t0
	return in
}

func put(in *registry.Instance) registry.Change {
	return registry.Change{Op: registry.OpPutInstance, Service: in.Service, Instance: in}
}

func del(service, id string) registry.Change {
	return registry.Change{Op: registry.OpDeleteInstance, Service: service, ID: id}
}

func settings(service string, ttl int) registry.Change {
	return registry.Change{Op: registry.OpPutService, Service: service, Settings: registry.Settings{DNSTTL: &ttl}}
}

func open(t testing.TB, dir string) *store.Bolt {
	t.Helper()
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dump renders a state as sorted lines of JSON, so states compare as text.
func dump(t testing.TB, st *registry.State) []string {
	t.Helper()
	var lines []string
	for name, s := range st.Services {
		j, _ := json.Marshal(s)
		lines = append(lines, "service "+name+" "+string(j))
	}
	for _, in := range st.Instances {
		j, _ := json.Marshal(in)
		lines = append(lines, "instance "+string(j))
	}
	slices.Sort(lines)
	return lines
}

func TestCommitAndReopen(t *testing.T) {
	ctx := context.Background()
	a1, a2, b1 := instance(t, "api", "a1", "10.0.0.1"), instance(t, "api", "a2", "10.0.0.2"), instance(t, "web", "b1", "2001:db8::1")
	a1v2 := instance(t, "api", "a1", "10.0.0.9")
	a1v2.Revision = 7
	b1m := instance(t, "web", "b1", "2001:db8::1")
	b1m.Maintenance = &registry.Maintenance{Reason: "disk swap", Since: t0}

	tests := []struct {
		name    string
		commits [][]registry.Change
		want    *registry.State
	}{
		{"empty", nil, &registry.State{}},
		{"puts", [][]registry.Change{{put(a1), put(a2), put(b1), settings("web", 30)}},
			&registry.State{Instances: []*registry.Instance{a1, a2, b1}, Services: map[string]registry.Settings{"web": {DNSTTL: new(30)}}}},
		{"last write in a batch wins", [][]registry.Change{{put(a1), put(a1v2), put(a2), del("api", "a2"), settings("web", 30), settings("web", 60)}},
			&registry.State{Instances: []*registry.Instance{a1v2}, Services: map[string]registry.Settings{"web": {DNSTTL: new(60)}}}},
		{"later commits replace and delete", [][]registry.Change{{put(a1), put(a2), put(b1)}, {put(a1v2), del("api", "a2")}, {put(b1m)}},
			&registry.State{Instances: []*registry.Instance{a1v2, b1m}}},
		{"delete of a missing instance", [][]registry.Change{{del("api", "nope")}}, &registry.State{}},
		{"settings without instances", [][]registry.Change{{settings("db", 5)}},
			&registry.State{Services: map[string]registry.Settings{"db": {DNSTTL: new(5)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b := open(t, dir)
			for _, c := range tt.commits {
				if err := b.Commit(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			b = open(t, dir)
			defer b.Close()
			got, err := b.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := dump(t, got), dump(t, tt.want); !slices.Equal(g, w) {
				t.Errorf("after reopening:\n got %s\nwant %s", strings.Join(g, "\n     "), strings.Join(w, "\n     "))
			}
			for _, in := range got.Instances {
				if in.Health != (registry.Health{}) {
					t.Errorf("%s: health %+v was stored", in.Key(), in.Health)
				}
			}
		})
	}
}

func TestCommitRejectsBadChanges(t *testing.T) {
	ctx := context.Background()
	good := instance(t, "api", "a1", "10.0.0.1")
	unsorted := instance(t, "api", "a2", "10.0.0.2")
	unsorted.Tags = []string{"v2", "blue"}
	noRev := instance(t, "api", "a3", "10.0.0.3")
	noRev.Revision = 0
	upper := instance(t, "api", "a4", "10.0.0.4")
	upper.ID = "A4"
	badPort := instance(t, "api", "a5", "10.0.0.5")
	badPort.Port = 0
	wrongService := instance(t, "api", "a6", "10.0.0.6")

	tests := []struct {
		name   string
		change registry.Change
		want   string
	}{
		{"tags out of order", put(unsorted), `change 2 (put-instance api): invalid: tags not in canonical form`},
		{"revision 0", put(noRev), `invalid: revision is 0`},
		{"upper-case id", put(upper), `instance id "A4" must be lower-case letters`},
		{"port 0", put(badPort), `port 0 is out of range 1-65535`},
		{"instance of another service", registry.Change{Op: registry.OpPutInstance, Service: "web", Instance: wrongService}, `instance does not belong to the change's service`},
		{"nil instance", registry.Change{Op: registry.OpPutInstance, Service: "api"}, `instance does not belong`},
		{"delete with a bad id", del("api", "a/b"), `bad instance name "api/a/b"`},
		{"bad settings", registry.Change{Op: registry.OpPutService, Service: "api", Settings: registry.Settings{DNSTTL: new(-1)}}, `dns_ttl -1 is out of range`},
		{"bad service name", settings("Web_1", 5), `service name "Web_1" must be lower-case`},
		{"unknown op", registry.Change{Op: 99, Service: "api"}, `unknown op 99`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b := open(t, dir)
			defer b.Close()
			err := b.Commit(ctx, []registry.Change{put(good), tt.change})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Commit: %v, want an error containing %q", err, tt.want)
			}
			st, err := b.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Instances) != 0 {
				t.Errorf("a refused commit stored %d instances", len(st.Instances))
			}
		})
	}
}

func TestCommitAfterCloseOrCancel(t *testing.T) {
	b := open(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Commit(ctx, []registry.Change{put(instance(t, "api", "a1", "10.0.0.1"))}); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a cancelled context: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(context.Background(), []registry.Change{put(instance(t, "api", "a1", "10.0.0.1"))}); err == nil {
		t.Error("Commit after Close succeeded")
	}
}

func TestOpenCreatesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "disco-data")
	b := open(t, dir)
	defer b.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("data dir mode %v, want 0700", perm)
	}
	if want := filepath.Join(dir, "disco.db"); b.Path() != want {
		t.Errorf("Path() = %s, want %s", b.Path(), want)
	}
	fi, err = os.Stat(b.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("data file mode %v, want 0600", perm)
	}
}

// TestOpenInUse opens the data dir from a second process while this one
// holds it.
func TestOpenInUse(t *testing.T) {
	if dir := os.Getenv("DISCO_STORE_TEST_OPEN"); dir != "" {
		_, err := store.Open(dir, store.Options{})
		fmt.Println(err)
		os.Exit(0)
	}
	dir := t.TempDir()
	b := open(t, dir)
	defer b.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenInUse$")
	cmd.Env = append(os.Environ(), "DISCO_STORE_TEST_OPEN="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("second process: %v\n%s", err, out)
	}
	want := fmt.Sprintf("data dir %s is in use by another disco server (lock on %s)", dir, filepath.Join(dir, "disco.db"))
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("second process got\n%s\nwant\n%s", got, want)
	}

	// The same within one process, with errors.Is.
	_, err = store.Open(dir, store.Options{})
	if !errors.Is(err, store.ErrInUse) || err.Error() != want {
		t.Errorf("second Open: %v", err)
	}
	// Once closed, the dir opens again.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, dir).Close()
}

// populate writes n instances over a few commits and closes the store.
func populate(t testing.TB, dir string, n int) {
	t.Helper()
	b := open(t, dir)
	var batch []registry.Change
	for i := range n {
		batch = append(batch, put(instance(t, fmt.Sprintf("svc%d", i%50), fmt.Sprintf("i%d", i), "10.0.0.1")))
		if len(batch) == 1000 || i == n-1 {
			if err := b.Commit(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// inject writes raw records into the data file with bbolt directly.
func inject(t testing.TB, dir string, f func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "disco.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(f); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func putRaw(bucket, key, val string) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return bk.Put([]byte(key), []byte(val))
	}
}

func TestOpenRefusesBadDataFiles(t *testing.T) {
	goodJSON := func(mod func(in *registry.Instance)) string {
		in := instance(t, "api", "a1", "10.0.0.1")
		if mod != nil {
			mod(in)
		}
		j, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		return string(j)
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir, file string)
		want    string // in the error, after the file's path was replaced by FILE
		corrupt bool   // errors.Is(err, store.ErrCorrupt)
	}{
		{"truncated below its last page", func(t *testing.T, dir, file string) {
			populate(t, dir, 3000)
			truncate(t, file, 0.4)
		}, "data file FILE is corrupt: ", true},
		{"truncated to a tenth", func(t *testing.T, dir, file string) {
			populate(t, dir, 3000)
			truncate(t, file, 0.1)
		}, "data file FILE is corrupt: ", true},
		{"truncated below two pages", func(t *testing.T, dir, file string) {
			populate(t, dir, 10)
			if err := os.Truncate(file, 100); err != nil {
				t.Fatal(err)
			}
		}, "data file FILE is corrupt: invalid database", true},
		{"garbage bytes", func(t *testing.T, dir, file string) {
			write(t, file, []byte(strings.Repeat("not a database ", 5000)))
		}, "data file FILE is corrupt: ", true},
		{"meta pages overwritten", func(t *testing.T, dir, file string) {
			populate(t, dir, 100)
			f, err := os.OpenFile(file, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 8192), 0); err != nil {
				t.Fatal(err)
			}
		}, "data file FILE is corrupt: ", true},
		{"directory in place of the file", func(t *testing.T, dir, file string) {
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(file, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "open data file FILE: ", false},
		{"data dir is a file", func(t *testing.T, dir, file string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			write(t, dir, []byte("x"))
		}, "create data dir ", false},
		{"bad JSON record", func(t *testing.T, dir, file string) {
			populate(t, dir, 10)
			inject(t, dir, putRaw("instances", "api/a1", `{"service":"api",`))
		}, `data file FILE is corrupt: bucket "instances", key "api/a1": decode: unexpected end of JSON input`, true},
		{"bad address", func(t *testing.T, dir, file string) {
			populate(t, dir, 10)
			inject(t, dir, putRaw("instances", "api/a1", `{"service":"api","id":"a1","address":"10.0.0.300","port":80}`))
		}, `bucket "instances", key "api/a1": decode: ParseAddr("10.0.0.300")`, true},
		{"key does not match record", func(t *testing.T, dir, file string) {
			populate(t, dir, 10)
			inject(t, dir, putRaw("instances", "api/a2", goodJSON(nil)))
		}, `bucket "instances", key "api/a2": record holds instance "api/a1", not the one its key names`, true},
		{"record fails validation", func(t *testing.T, dir, file string) {
			inject(t, dir, putRaw("instances", "api/a1", goodJSON(func(in *registry.Instance) { in.Port = 0 })))
		}, `bucket "instances", key "api/a1": invalid: port 0 is out of range 1-65535`, true},
		{"record with a bad check", func(t *testing.T, dir, file string) {
			inject(t, dir, putRaw("instances", "api/a1", goodJSON(func(in *registry.Instance) { in.Checks[0].Timeout = registry.Duration(time.Minute) })))
		}, `key "api/a1": check 1: invalid: tcp check: timeout 1m0s must be shorter than interval 10s`, true},
		{"record without revision", func(t *testing.T, dir, file string) {
			inject(t, dir, putRaw("instances", "api/a1", goodJSON(func(in *registry.Instance) { in.Revision = 0 })))
		}, `key "api/a1": invalid: revision is 0`, true},
		{"bad settings record", func(t *testing.T, dir, file string) {
			inject(t, dir, putRaw("services", "api", `{"dns_ttl":-5}`))
		}, `bucket "services", key "api": invalid: dns_ttl -5 is out of range 0-86400 seconds`, true},
		{"settings under a bad name", func(t *testing.T, dir, file string) {
			inject(t, dir, putRaw("services", "API", `{"dns_ttl":5}`))
		}, `bucket "services", key "API": invalid: service name "API" must be`, true},
		{"settings not JSON", func(t *testing.T, dir, file string) {
			inject(t, dir, putRaw("services", "api", `dns_ttl=5`))
		}, `bucket "services", key "api": decode: invalid character`, true},
		{"newer schema", func(t *testing.T, dir, file string) {
			inject(t, dir, putRaw("meta", "schema_version", "2"))
		}, "data file FILE has schema version 2, newer than the 1 this disco reads: unsupported schema version (run a newer disco)", false},
		{"bad schema version", func(t *testing.T, dir, file string) {
			inject(t, dir, putRaw("meta", "schema_version", "one"))
		}, `data file FILE is corrupt: bucket "meta", key "schema_version": bad schema version "one"`, true},
		{"missing bucket", func(t *testing.T, dir, file string) {
			inject(t, dir, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("instances")) })
		}, `data file FILE is corrupt: bucket "instances" is missing`, true},
		{"another program's bbolt file", func(t *testing.T, dir, file string) {
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			inject(t, dir, putRaw("widgets", "w1", "{}"))
		}, "data file FILE is corrupt: no schema version: not a disco data file", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "disco.db")
			open(t, dir).Close()
			tt.prepare(t, dir, file)

			b, err := store.Open(dir, store.Options{})
			if err == nil {
				_, err = b.Load(context.Background())
				b.Close()
			}
			if err == nil {
				t.Fatal("the bad data file was accepted")
			}
			msg := strings.ReplaceAll(err.Error(), file, "FILE")
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error\n%s\ndoes not contain\n%s", msg, tt.want)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the data file", err)
			}
			if errors.Is(err, store.ErrCorrupt) != tt.corrupt {
				t.Errorf("errors.Is(err, ErrCorrupt) = %v, want %v", !tt.corrupt, tt.corrupt)
			}
		})
	}
}

// TestOpenUnreadableFile needs a user the file's mode binds (not root).
func TestOpenUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads a mode 000 file; see the directory case of TestOpenRefusesBadDataFiles")
	}
	dir := t.TempDir()
	populate(t, dir, 10)
	file := filepath.Join(dir, "disco.db")
	if err := os.Chmod(file, 0); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(dir, store.Options{})
	if want := "open data file " + file + ": "; err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("Open: %v, want %q and a permission error", err, want)
	}
}

// TestOpenAfterFailedOpen checks that an Open that fails on a damaged file
// releases it, so a later Open of a repaired file is not refused as in use.
func TestOpenAfterFailedOpen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "disco.db")
	populate(t, dir, 3000)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	truncate(t, file, 0.4)
	if _, err := store.Open(dir, store.Options{}); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Open of a truncated file: %v", err)
	}
	write(t, file, good)
	b := open(t, dir)
	defer b.Close()
	st, err := b.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Instances) != 3000 {
		t.Errorf("loaded %d instances, want 3000", len(st.Instances))
	}
}

func truncate(t *testing.T, file string, frac float64) {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, int64(float64(fi.Size())*frac)/4096*4096); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, file string, data []byte) {
	t.Helper()
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
