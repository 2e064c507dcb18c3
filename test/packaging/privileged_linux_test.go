package packaging

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// overlayPrelude runs first in a private mount namespace: it makes /etc,
// /usr, /var (and /lib without a merged /usr) overlays whose changes land
// in $WORK, so that what follows can install for real without touching the
// host, and it defines check, which prints a FAIL line for a failed check.
const overlayPrelude = `
set -u
mount --make-rprivate /
mount -t tmpfs tmpfs "$WORK"
for d in etc usr var lib; do
	[ -d /$d ] && [ ! -L /$d ] || continue
	mkdir -p "$WORK/$d/up" "$WORK/$d/work"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$WORK/$d/up,workdir=$WORK/$d/work" /$d
done
fail=0
check() { if ! sh -c "$1" >/dev/null 2>&1; then echo "FAIL: $2"; fail=1; fi; }
# A clean slate, even on a host that has a vipd user.
userdel vipd 2>/dev/null; groupdel vipd 2>/dev/null
`

// runInOverlay runs overlayPrelude and then script as root in a private
// mount namespace, with env added, and reports its FAIL lines.
func runInOverlay(t *testing.T, script string, env ...string) string {
	t.Helper()
	unshare := need(t, "unshare", "util-linux")
	cmd := exec.Command(unshare, "--mount", "--fork", "sh", "-c", overlayPrelude+script)
	cmd.Env = append(os.Environ(), append(env, "WORK="+t.TempDir(), "ROOT="+moduleRoot(t))...)
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "FAIL: ") {
			t.Error(strings.TrimPrefix(line, "FAIL: "))
		}
	}
	if err != nil || t.Failed() {
		t.Fatalf("%v\n%s", err, out)
	}
	return string(out)
}

// debInstallScript installs, upgrades, removes and purges the package with
// dpkg, for real. systemd need not run; the maintainer scripts then only
// record the unit's enablement.
const debInstallScript = `
export DEBIAN_FRONTEND=noninteractive
dpkgi() { dpkg "$@" </dev/null || { echo "FAIL: dpkg $*"; exit 1; }; }
dpkg --purge vipd >/dev/null 2>&1
export wants=/etc/systemd/system/multi-user.target.wants/vipd.service

dpkgi -i "$DEB1"
check '/usr/sbin/vipd version | grep -q "v1.0.0"' "vipd version after install"
check 'getent passwd vipd' "postinst created the user vipd"
check 'getent group vipd' "postinst created the group vipd"
check '[ "$(getent passwd vipd | cut -d: -f7)" = /usr/sbin/nologin ]' "vipd has no login shell"
check '[ "$(id -u vipd)" -lt 1000 ]' "vipd is a system user"
check '[ "$(readlink $wants)" = /lib/systemd/system/vipd.service ] || [ "$(readlink $wants)" = /usr/lib/systemd/system/vipd.service ]' "postinst enabled vipd.service"
check 'cmp /etc/vipd/vipd.yaml "$ROOT/configs/vipd.yaml"' "the example config installed"

echo "# edited" >> /etc/vipd/vipd.yaml
dpkgi -i "$DEB2"
check '/usr/sbin/vipd version | grep -q "v1.0.1"' "vipd version after upgrade"
check 'tail -1 /etc/vipd/vipd.yaml | grep -q "^# edited$"' "the upgrade kept the edited config"
check '[ ! -e /etc/vipd/vipd.yaml.dpkg-new ] && [ ! -e /etc/vipd/vipd.yaml.dpkg-dist ]' "no config copies left beside it"
check '[ -L $wants ]' "still enabled after the upgrade"

dpkgi -r vipd
check '[ ! -e /usr/sbin/vipd ]' "remove deleted the binary"
check '[ ! -e /lib/systemd/system/vipd.service ]' "remove deleted the unit"
check 'tail -1 /etc/vipd/vipd.yaml | grep -q "^# edited$"' "remove kept the config"
check 'getent passwd vipd' "remove kept the user"

dpkgi --purge vipd
check '[ ! -e /etc/vipd ]' "purge deleted /etc/vipd"
check '! getent passwd vipd' "purge removed the user"
check '! getent group vipd' "purge removed the group"
check '[ ! -L $wants ]' "purge removed the enablement"
check '! dpkg-query -W vipd' "purge forgot the package"
exit $fail
`

func TestDebInstall(t *testing.T) {
	needRoot(t)
	need(t, "dpkg", "dpkg")
	deb1 := buildDeb(t, "v1.0.0")
	deb2 := buildDeb(t, "v1.0.1")
	t.Logf("%s", runInOverlay(t, debInstallScript, "DEB1="+deb1, "DEB2="+deb2))
}

// makeInstallScript runs make install with an empty DESTDIR, twice.
const makeInstallScript = `
unset MAKEFLAGS MFLAGS MAKELEVEL DESTDIR PREFIX
cd "$ROOT"
make --no-print-directory install BIN="$BIN" || { echo "FAIL: make install"; exit 1; }
check '[ -x /usr/sbin/vipd ] && [ -f /lib/systemd/system/vipd.service ] && [ -f /etc/vipd/vipd.yaml ]' "make install put the files in /"
check 'getent passwd vipd' "make install created the user vipd"
check 'getent group vipd' "make install created the group vipd"
check '[ "$(getent passwd vipd | cut -d: -f7)" = /usr/sbin/nologin ]' "vipd has no login shell"
check '[ "$(id -u vipd)" -lt 1000 ]' "vipd is a system user"
uid=$(id -u vipd)
make --no-print-directory install BIN="$BIN" || { echo "FAIL: second make install"; exit 1; }
check '[ "$(id -u vipd)" = "'"$uid"'" ]' "a second make install kept the user"
make --no-print-directory uninstall || { echo "FAIL: make uninstall"; exit 1; }
check '[ ! -e /usr/sbin/vipd ] && [ ! -e /lib/systemd/system/vipd.service ] && [ ! -e /usr/share/doc/vipd ]' "make uninstall removed the files"
check '[ -f /etc/vipd/vipd.yaml ] && getent passwd vipd' "make uninstall kept the config and the user"
exit $fail
`

// TestMakeInstallRoot: make install into / creates the vipd system user.
func TestMakeInstallRoot(t *testing.T) {
	needRoot(t)
	need(t, "make", "make")
	bin := t.TempDir()
	buildVipd(t, bin)
	t.Logf("%s", runInOverlay(t, makeInstallScript, "BIN="+bin))
}
