package pgserver

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// fakeDB answers the version query with num and records every query, so a
// test sees whether SHOW io_method was sent.
type fakeDB struct {
	num     int
	queries []string
}

type row func(dest ...any) error

func (r row) Scan(dest ...any) error { return r(dest...) }

func (f *fakeDB) QueryRow(_ context.Context, sql string, _ ...any) pgx.Row {
	f.queries = append(f.queries, sql)
	return row(func(dest ...any) error {
		switch {
		case strings.Contains(sql, "server_version_num"):
			*dest[0].(*string) = fmt.Sprintf("%d.0", f.num/10000)
			*dest[1].(*int) = f.num
		case sql == "SHOW io_method":
			if f.num < IOMethodSince {
				return fmt.Errorf(`unrecognized configuration parameter "io_method"`)
			}
			*dest[0].(*string) = "worker"
		}
		return nil
	})
}

// TestReadAsksForIOMethodOnlyOn18: PostgreSQL 14 to 17 would refuse SHOW
// io_method, so it must not be sent to them.
func TestReadAsksForIOMethodOnlyOn18(t *testing.T) {
	t.Parallel()
	for _, num := range []int{140000, 150014, 170006, 180000, 180001} {
		db := &fakeDB{num: num}
		in, err := Read(context.Background(), db)
		if err != nil {
			t.Fatalf("%d: %v", num, err)
		}
		want := ""
		if num >= 180000 {
			want = "worker"
		}
		if in.IOMethod != want || in.VersionNum != num {
			t.Errorf("%d: got %+v, want io_method %q", num, in, want)
		}
		if asked := len(db.queries) == 2; asked != (num >= 180000) {
			t.Errorf("%d: queries %q", num, db.queries)
		}
	}
}
