package lab

import (
	"net/netip"
	"testing"
	"time"
)

func TestVipdConfig(t *testing.T) {
	got := VipdConfig("/tmp/x/n1.sock", Instance{
		VRID: 51, Priority: 150, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		VIPs: []netip.Prefix{VIP},
	})
	want := `control_socket: "/tmp/x/n1.sock"
instances:
  - name: api
    interface: eth0
    vrid: 51
    priority: 150
    advert_interval: 100ms
    preempt: true
    preempt_delay: 0s
    vips: ["192.0.2.50/24"]
    announce: {count: 5, interval: 200ms}
`
	if got != want {
		t.Errorf("VipdConfig:\n%s\nwant:\n%s", got, want)
	}
}

func TestKeepalivedConfig(t *testing.T) {
	got := KeepalivedConfig("n2", Instance{
		VRID: 51, Priority: 100, AdvertInterval: 10 * time.Millisecond,
		VIPs: []netip.Prefix{VIP},
	})
	want := `global_defs {
  router_id n2
  vrrp_version 3
  vrrp_garp_interval 0.2
}
vrrp_instance api {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 0.01
  nopreempt
  garp_master_repeat 5
  garp_master_delay 0
  virtual_ipaddress {
    192.0.2.50/24 dev eth0
  }
}
`
	if got != want {
		t.Errorf("KeepalivedConfig:\n%s\nwant:\n%s", got, want)
	}
}

func TestRFCTimes(t *testing.T) {
	for _, tt := range []struct {
		prio     int
		interval time.Duration
		skew     time.Duration
		mdi      time.Duration
	}{
		{100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{100, 10 * time.Millisecond, 6093750 * time.Nanosecond, 36093750 * time.Nanosecond},
		{255, 100 * time.Millisecond, 390625 * time.Nanosecond, 300390625 * time.Nanosecond},
	} {
		if got := SkewTime(tt.prio, tt.interval); got != tt.skew {
			t.Errorf("SkewTime(%d, %v) = %v, want %v", tt.prio, tt.interval, got, tt.skew)
		}
		if got := MasterDownInterval(tt.prio, tt.interval); got != tt.mdi {
			t.Errorf("MasterDownInterval(%d, %v) = %v, want %v", tt.prio, tt.interval, got, tt.mdi)
		}
	}
}

func TestNodeAddr(t *testing.T) {
	if got, want := NodeAddr(1), netip.MustParsePrefix("192.0.2.11/24"); got != want {
		t.Errorf("NodeAddr(1) = %v, want %v", got, want)
	}
}
