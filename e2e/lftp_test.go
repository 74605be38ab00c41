package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// TestLftp: lftp's sftp:// (its own SFTP client over OpenSSH's ssh, which
// it gives the password through a pty): mirror both ways with parallel
// transfers and --delete, resumed put and get (-c), pget in segments,
// listings, mv, chmod, rm -r, and the errors it reports.
func TestLftp(t *testing.T) {
	t.Parallel()
	lftp := testenv.NeedTool(t, "lftp")
	testenv.NeedTool(t, "ssh")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	home := s.mkHome(t, "alice")
	local := t.TempDir()
	files := makeTree(t, filepath.Join(local, "src"))
	big := files["big.bin"]
	// Half an upload and a third of a download, to be continued.
	writeFile(t, filepath.Join(home, "resume.bin"), big[:len(big)/2])
	writeFile(t, filepath.Join(local, "resumed.bin"), big[:len(big)/3])
	writeFile(t, filepath.Join(home, "x.txt"), []byte("x"))
	writeFile(t, filepath.Join(home, "y.txt"), []byte("y"))

	script := fmt.Sprintf(`set sftp:connect-program "ssh -a -x -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o PubkeyAuthentication=no"
set net:max-retries 1
set net:timeout 20
set cmd:fail-exit no
set sftp:max-packets-in-flight 64
set sftp:size-write 65536
open -u alice,pw-alice -p %d sftp://127.0.0.1
mirror -R --parallel=4 src up
cls -1 up
mirror --parallel=4 up down
put -c src/big.bin -o resume.bin
get -c resume.bin -o resumed.bin
pget -n 4 up/big.bin -o pget.bin
mv up/empty up/moved
chmod 600 up/moved
cls -l up/moved
mv x.txt y.txt
rm nothere
cd nodir
mkdir up
rmdir up
ln -s x.txt lnk
!rm src/many/f05
mirror -R --parallel=4 --delete src up
cls up/many/f05 up/many/f06
rm -r up
cls -1
`, s.port)
	writeFile(t, filepath.Join(local, "script.lftp"), []byte(script))
	r := run(t, local, "", lftp, "-f", "script.lftp")
	// cmd:fail-exit off: the refused commands below make the exit status 1.
	t.Logf("lftp output:\n%s", r.out)

	checkTree(t, filepath.Join(local, "down"), files)
	for name, want := range map[string][]byte{
		filepath.Join(home, "resume.bin"):   big,
		filepath.Join(local, "resumed.bin"): big,
		filepath.Join(local, "pget.bin"):    big,
	} {
		if got := readFile(t, name); !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, want %d, or contents differ", name, len(got), len(want))
		}
	}
	// put -c sent only the missing half.
	if !s.waitLog(func(log string) bool {
		return strings.Contains(log, fmt.Sprintf("path=/resume.bin bytes_read=0 bytes_written=%d ", len(big)-len(big)/2))
	}) {
		t.Errorf("put -c did not continue from the server's size")
	}
	for _, want := range []string{
		"up/big.bin\nup/empty\nup/many/\nup/with space.txt\n", // cls -1 up
		"-rw-------",                         // chmod 600 then cls -l
		"mv: Access failed: Failure (x.txt)", // SSH_FXP_RENAME does not replace
		"rm: Access failed: No such file (nothere)",
		"cd: Access failed: No such file (/nodir)",
		"mkdir: Access failed: Failure (up)",
		"rmdir: Access failed: Failure (up)",
		"ln: Access failed: Permission denied (x.txt)", // no --symlinks
		"Access failed: No such file (/up/many/f05)",   // mirror --delete removed it
		"up/many/f06",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("lftp output lacks %q", want)
		}
	}
	ents, err := os.ReadDir(home)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "resume.bin,x.txt,y.txt" {
		t.Errorf("home after rm -r up: %s", got)
	}
	if got := readFile(t, filepath.Join(home, "y.txt")); string(got) != "y" {
		t.Errorf("mv over an existing file replaced it: %q", got)
	}
}
