package lab

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// keepalivedStatsSample is what Debian's keepalived 2.2.7 wrote on SIGUSR2,
// cut short in the second instance as a reader can find it mid-write.
const keepalivedStatsSample = `VRRP Instance: s0v1
  Advertisements:
    Received: 3
    Sent: 22
  Became master: 1
  Released master: 0
  Packet Errors:
    Length: 0
    TTL: 0
    Invalid Type: 0
    Advertisement Interval: 0
    Address List: 0
  Authentication Errors:
    Invalid Type: 0
    Type Mismatch: 0
    Failure: 0
  Priority Zero:
    Received: 1
    Sent: 2
VRRP Instance: s0v2
  Advertisements:
    Received: 7
    Sent: 0
  Became master: 0
`

func TestParseKeepalivedStats(t *testing.T) {
	got, complete, err := ParseKeepalivedStats(strings.NewReader(keepalivedStatsSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []KeepalivedStats{
		{Instance: "s0v1", AdvertsReceived: 3, AdvertsSent: 22, BecameMaster: 1, PriorityZeroRx: 1, PriorityZeroTx: 2, complete: true},
		{Instance: "s0v2", AdvertsReceived: 7},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(KeepalivedStats{})); d != "" {
		t.Errorf("ParseKeepalivedStats (-want +got):\n%s", d)
	}
	if complete != 1 {
		t.Errorf("complete = %d, want 1", complete)
	}
	if _, _, err := ParseKeepalivedStats(strings.NewReader("VRRP Instance: a\n  Advertisements:\n    Received: x\n")); err == nil {
		t.Error("a counter that is not a number: no error")
	}
}
