package daemon

import (
	"testing"
)

func TestSmoke(t *testing.T) {
	for _, doc := range []string{
		"listen = [\"a:1\"]\nsftp.umask = \"027\"\n[log]\nlevel = \"debug\"\n",
		"\n\nbogus = 1\n",
		"[sftp]\numask = \"089\"\n",
		"\nMaxAuthTries = 3\n",
		"foo.bar = 1\n",
		"listen.x = 1\n",
		"[sftp.x]\ny=1\n",
		"sftp = 5\n",
		"max_auth_tries = -1\n",
		"ciphers = \"+aes128-cbc,foo\"\n",
		"kex_algorithms = [\"curve25519-sha256\"]\n",
		"password_authentication = false\npubkey_authentication = false\n\nkbd_interactive_authentication = false\n",
		"x = \n",
	} {
		c, err := ParseConfig("t.toml", []byte(doc))
		if err != nil {
			t.Logf("%q -> %v", doc, err)
		} else {
			t.Logf("%q -> ok %v %o %v", doc, c.Listen, c.SFTP.Umask, c.Log.Level)
		}
	}
}
