package sftp

import (
	"os"
	"testing"
)

// TestOpenHandles: Server.OpenHandles counts the files and directories a
// session holds, until CLOSE has committed them, and none once the
// session ended. ferry serve's drain ends sessions with none open at once.
func TestOpenHandles(t *testing.T) {
	forEachServeMode(t, func(t *testing.T, start serverStarter) {
		ts := start(t, nil)
		c := ts.client(t)
		if n := ts.srv.OpenHandles(); n != 0 {
			t.Fatalf("after INIT: %d open handles", n)
		}
		f, err := c.OpenFile("/up", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		if n := ts.srv.OpenHandles(); n != 1 {
			t.Fatalf("during an upload: %d open handles, want 1", n)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if n := ts.srv.OpenHandles(); n != 0 {
			t.Fatalf("after CLOSE: %d open handles", n)
		}
		if _, err := c.ReadDir("/"); err != nil {
			t.Fatal(err)
		}
		if n := ts.srv.OpenHandles(); n != 0 {
			t.Fatalf("after a listing: %d open handles", n)
		}
		// A session that ends with a file open lets it go.
		if _, err := c.Open("/up"); err != nil {
			t.Fatal(err)
		}
		if n := ts.srv.OpenHandles(); n != 1 {
			t.Fatalf("a file open for reading: %d open handles, want 1", n)
		}
		c.Close()
		ts.wait()
		if n := ts.srv.OpenHandles(); n != 0 {
			t.Fatalf("after the session ended: %d open handles", n)
		}
	})
}
